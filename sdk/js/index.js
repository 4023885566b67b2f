// @experimentation/sdk: EventPlane's JavaScript SDK (Node 18+ and browsers, no dependencies).
export { ExperimentationClient } from './src/client.js';
export { DeliveryError } from './src/errors.js';
export { DEFAULTS } from './src/options.js';
export { VERSION } from './src/transport.js';
export { bucket, murmur3_32 } from './src/bucketing.js';
export { assign, evaluateFlag, exposureMessageId } from './src/evaluation.js';
