/** KIS: registrations per session, all products together (docs/brokers.md#kis-real-time-session: the notice's 41). */
export const KIS_MAX_REGISTRATIONS = 41;
/**
 * Kiwoom publishes no limit per session (a client library checks 100 items per group): the endpoint holds at most
 * this many (type, item) pairs, so a client cannot grow the session without bound.
 */
export const KIWOOM_MAX_REGISTRATIONS = 100;
