/**
 * What the two brokers' order endpoints share: the exchanges and digit strings of their fields, and numbering.
 * Each broker numbers the orders it accepts, in increasing order, as a zero-padded string. The simulator accepts
 * orders and forgets them (nothing is filled, listed or cancelled); the number is all a client keeps, so it is all
 * the simulator keeps. A reset does not restart the count: a broker never hands out an order number twice, and a
 * test comparing numbers across a reset should not meet a repeat.
 */
import type { SimulatedProvider } from './types';

// KIS ODNO: 10 digits (third-party samples, e.g. "0001569157"). Kiwoom ord_no: 7 digits (a third-party sample,
// "0362917"; the guide's own sample shows a shorter "00024").
const WIDTH: Record<SimulatedProvider, number> = { kis: 10, kiwoom: 7 };

/** The exchanges a domestic order may be routed to, by both brokers: KRX, Nextrade, smart order routing. */
export const DOMESTIC_EXCHANGES: readonly string[] = ['KRX', 'NXT', 'SOR'];

/** Quantities and prices travel as strings of digits; a quantity or a stated price must be above zero. */
export const POSITIVE_DIGITS = /^\d*[1-9]\d*$/;

export class OrderNumbers {
  private readonly last: Record<SimulatedProvider, number> = { kis: 0, kiwoom: 0 };

  next(provider: SimulatedProvider): string {
    this.last[provider]++;
    return String(this.last[provider]).padStart(WIDTH[provider], '0');
  }
}
