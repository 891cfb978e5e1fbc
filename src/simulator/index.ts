/**
 * The broker simulator: KIS and Kiwoom token endpoints, revoke, approval key, the proving calls and the cash
 * orders, with the real limits and error bodies and injectable faults, and the brokers' WebSockets (real-time
 * sessions, src/simulator/realtime/). Used by the tests and the demo so nobody needs real credentials or receives a
 * KakaoTalk notice.
 */
export { BrokerSimulator } from './simulator';
export { runSimulatorServer } from './server';
export { generateCredential } from './credentials';
export { SimulatorInputError } from './schemas';
export type { FaultSpec, SimulatorCredential, SimulatorOptions } from './types';
export { VOLUME_STEP } from './realtime/quotes';
export { KIS_TR_LAYOUTS } from './realtime/kis-records';
export type { RealtimeOptions, RealtimeSessionInfo, RealtimeStats } from './realtime/types';
