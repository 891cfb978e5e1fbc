import type { AccountView } from '../lifecycle/views';
import { formatIsoInZone } from '../core/time';
import { preview } from '../core/secrets';
import { tokenId } from '../store/account-state';

/**
 * The per-account report /status, /readyz and the `status` command share. In the spirit of the first system's
 * get_token_info: everything an operator asks, nothing secret (a token is shown as a 6-character preview and
 * a hash id).
 */
const iso = (ms: number | null | undefined): string | null => (ms === null || ms === undefined ? null : formatIsoInZone(ms));
const octal = (mode: number | null): string | null => (mode === null ? null : `0${mode.toString(8)}`);

export function accountReport(view: AccountView, now: number) {
  const { snapshot, sinks, ready } = view;
  const { state } = snapshot;
  const token = state.token;
  const lastAttempt = state.lastAttempt;
  return {
    account: snapshot.ref.name,
    provider: snapshot.ref.provider,
    env: snapshot.ref.env,
    hasToken: token !== null,
    usable: snapshot.usable,
    state: snapshot.status,
    ready,
    expiresAt: iso(token?.expiresAt),
    secondsLeft: token ? Math.max(0, Math.floor((token.expiresAt - now) / 1000)) : null,
    issuedAt: iso(token?.issuedAt),
    source: token?.source ?? null,
    tokenPreview: preview(token?.accessToken),
    tokenId: token ? tokenId(token.accessToken) : null,
    lastRenewal: lastAttempt && {
      at: iso(lastAttempt.at),
      result: lastAttempt.outcome === 'issued' || lastAttempt.outcome === 'same_token' || lastAttempt.outcome === 'pending' ? lastAttempt.outcome : 'failed',
      reason: state.lastFailure && state.lastFailure.at >= lastAttempt.at ? state.lastFailure.reason : null,
    },
    lastSuccessfulRenewalAt: iso(state.lastRenewalAt),
    lastFailure: state.lastFailure && { at: iso(state.lastFailure.at), reason: state.lastFailure.reason, message: state.lastFailure.message },
    consecutiveFailures: state.consecutiveFailures,
    credentialsRejected: state.authBlock !== null,
    nextRenewalAt: iso(snapshot.nextAttemptAt),
    waitingFor: snapshot.waitingFor,
    lastProof: state.lastProof && { at: iso(state.lastProof.at), result: state.lastProof.result, message: state.lastProof.message ?? null },
    invalidated: state.invalidated && { at: iso(state.invalidated.at), brokerCode: state.invalidated.brokerCode },
    sinks: sinks.map((sink) => ({
      name: sink.name,
      format: sink.format,
      path: sink.path,
      files: sink.files.map((file) => ({ path: file.path, present: file.present, healthy: file.healthy, mode: octal(file.mode) })),
      present: sink.present,
      healthy: sink.healthy,
      mode: octal(sink.mode),
      expectedMode: octal(sink.expectedMode),
      lastWriteAt: iso(sink.lastWriteAt),
      stuckSince: iso(sink.stuckSince),
      lastError: sink.lastError && { reason: sink.lastError.reason, message: sink.lastError.message, at: iso(sink.lastError.at) },
    })),
  };
}

export type AccountReport = ReturnType<typeof accountReport>;
