export { decide } from './evaluate.js';
export type * from './decision.js';
export type * from './model.js';
export type * from './request.js';
