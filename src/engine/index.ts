export { decide, decideMetered } from './evaluate.js';
export type * from './decision.js';
export { decidingLimit } from './decision.js';
export type * from './usage.js';
export { usageDemands } from './usage.js';
export type * from './model.js';
export type * from './request.js';
export { parseCheckRequest, checkAttributes, InvalidRequestError, DEFAULT_REQUEST_LIMITS, type RequestLimits } from './input.js';
export { DEFAULT_COST_LIMITS, type CostLimits } from './limits.js';
