/**
 * The one request validator (src/engine/input.ts), for adapters: they reach the engine through the
 * service layer only, and every API checks requests with the same function and limits.
 */
export { InvalidRequestError, parseCheckRequest, type RequestLimits } from '../engine/input.js';
