/**
 * The broker simulator: KIS and Kiwoom token endpoints, revoke, approval key and the proving calls, with the
 * real limits and error bodies and injectable faults. Used by the tests and the demo so nobody needs real
 * credentials or receives a KakaoTalk notice.
 */
export { BrokerSimulator } from './simulator';
export { SIMULATOR_PATHS } from './routes';
export { runSimulatorServer, type RunSimulatorOptions } from './server';
export { generateCredential } from './credentials';
export { KIS_PRICE_TR_ID } from './kis';
export { DEFAULT_REDIRECT_PATH } from './faults';
export { SimulatorInputError } from './schemas';
export {
  ENDPOINT_IDS,
  FAULT_KINDS,
  type EndpointId,
  type FaultKind,
  type FaultSpec,
  type Outcome,
  type RequestRecord,
  type SimulatedEnv,
  type SimulatedProvider,
  type SimulatorCredential,
  type SimulatorOptions,
  type SimulatorStats,
} from './types';
