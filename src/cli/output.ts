import { formatDuration } from '../core/duration';
import type { AccountReport } from '../http/status';

/** Human-readable status, one block per account, in the spirit of a check_token_cache script. */
export function formatReport(reports: Array<AccountReport & { problem?: string }>): string {
  const lines: string[] = [];
  for (const r of reports) {
    const mark = r.usable ? 'OK ' : 'BAD';
    lines.push(`${mark} ${r.account} (${r.provider}, ${r.env}): ${r.state}${r.usable ? '' : ' - not usable'}`);
    if (r.problem) lines.push(`    problem:       ${r.problem}`);
    if (r.hasToken) {
      lines.push(`    token:         ${r.tokenPreview} (id ${r.tokenId}, ${r.source})`);
      lines.push(`    expires:       ${r.expiresAt} (KST)${r.secondsLeft !== null ? `, ${formatDuration(r.secondsLeft * 1000)} left` : ''}`);
      lines.push(`    issued:        ${r.issuedAt}`);
    } else {
      lines.push('    token:         none');
    }
    if (r.nextRenewalAt) lines.push(`    next attempt:  ${r.nextRenewalAt} (${r.waitingFor.replace('_', ' ')})`);
    if (r.lastFailure) lines.push(`    last failure:  ${r.lastFailure.at} ${r.lastFailure.reason}: ${r.lastFailure.message}`);
    if (r.consecutiveFailures > 0) lines.push(`    failing:       ${r.consecutiveFailures} attempts in a row`);
    if (r.credentialsRejected) lines.push('    credentials:   REJECTED by the broker; fix the app key or secret');
    if (r.lastProof) lines.push(`    last proof:    ${r.lastProof.at} ${r.lastProof.result}`);
    for (const s of r.sinks) {
      const state = s.healthy ? 'ok' : s.present ? 'needs repair' : 'missing';
      const error = s.lastError ? ` (${s.lastError.reason}: ${s.lastError.message})` : '';
      lines.push(`    sink ${s.name.padEnd(14)} ${state.padEnd(12)} mode ${s.mode ?? '-'} (want ${s.expectedMode}) ${s.path}${error}`);
      // A kis-auth sink keeps one file per date a reader may compute; each is named when there are several.
      if (s.files.length > 1) {
        for (const f of s.files) lines.push(`${' '.repeat(24)}${(f.healthy ? 'ok' : f.present ? 'needs repair' : 'missing').padEnd(12)} ${f.path}`);
      }
    }
  }
  return lines.join('\n');
}
