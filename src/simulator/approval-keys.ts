/**
 * The KIS approval keys the simulator handed out at /oauth2/Approval, so its WebSocket can tell a key it issued
 * (and to which app key) from an unknown one (OPSP0011). docs/brokers.md#kis-approval-key.
 */
import { randomUUID } from 'node:crypto';

// "Valid 24 h but used once, at connect" (the portal's text, docs/brokers.md#kis-real-time-session).
const APPROVAL_KEY_LIFETIME_MS = 24 * 3_600_000;

interface IssuedApprovalKey {
  appKey: string;
  expiresAt: number;
}

export class ApprovalKeyBook {
  // Insertion order is issuance order, so the expired keys are always at the front.
  private readonly keys = new Map<string, IssuedApprovalKey>();

  /**
   * A new key for `appKey`. Simulator choice: earlier keys stay valid until their own expiry (the broker says
   * nothing of a new key revoking the old; python-kis asks for one per subscribe and keeps using the session).
   */
  issue(appKey: string, now: number): string {
    this.forgetExpired(now);
    const key = randomUUID();
    this.keys.set(key, { appKey, expiresAt: now + APPROVAL_KEY_LIFETIME_MS });
    return key;
  }

  /** The app key an approval key was issued to, while it is valid; undefined for an unknown or expired one. */
  ownerOf(approvalKey: string, now: number): string | undefined {
    const issued = this.keys.get(approvalKey);
    return issued !== undefined && now < issued.expiresAt ? issued.appKey : undefined;
  }

  clear(): void {
    this.keys.clear();
  }

  private forgetExpired(now: number): void {
    for (const [key, issued] of this.keys) {
      if (now < issued.expiresAt) return;
      this.keys.delete(key);
    }
  }
}
