import type { AlertKind } from '../config/types';
import type { AccountRef } from '../core/events';
import { formatDuration } from '../core/duration';
import { formatWallClock } from '../core/time';
import type { ActiveAlert } from './conditions';
import { ALERT_KINDS, runbookLink, type Severity } from './kinds';

/**
 * Slack messages: Block Kit with a plain-text fallback, in English or Korean. Built only from an alert's facts
 * (account, reasons, paths, times), which never hold a secret; the delivery redacts once more regardless.
 */

export type Language = 'en' | 'ko';
export type Phase = 'firing' | 'reminder' | 'resolved';

export interface SlackMessage {
  text: string;
  blocks: unknown[];
}

export interface MessageContext {
  language: Language;
  runbookUrl: string;
  dashboardUrl: string | undefined;
  host: string;
  version: string;
  now: number;
}

type Facts = ActiveAlert['facts'];
interface Texts {
  title: string;
  what: (f: Facts, a: ActiveAlert, now: number) => string;
  action: string;
}

const kst = (ms: number | null | undefined): string => (ms === null || ms === undefined ? '-' : `${formatWallClock(ms).slice(0, 16)} KST`);
const str = (value: string | number | null | undefined): string => (value === null || value === undefined ? '-' : String(value));

/** Slack mrkdwn needs &, < and > escaped in anything that did not come from us (broker messages, paths). */
function escapeMrkdwn(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

const EN: Record<AlertKind, Texts> = {
  no_usable_token: {
    title: 'No usable token',
    what: (f, _a, now) =>
      `The account has had no usable token for ${formatDuration(now - Number(f.since))} (\`${str(f.status)}\`): every program beside the sidecar is without one, and API calls fail.${f.reason ? ` Last failure: \`${str(f.reason)}\`: ${escapeMrkdwn(str(f.message))}.` : ''}${f.nextAttemptAt ? ` Next attempt ${kst(Number(f.nextAttemptAt))}.` : ''}`,
    action:
      "Check the broker's status, the credentials and the sidecar's log (`broker-token-sidecar status`). The sidecar keeps trying within the broker's limits; do not issue tokens by hand with the same app key.",
  },
  renewal_failing: {
    title: 'Token renewal failing',
    what: (f) => `${str(f.failures)} issuance attempts in a row have failed. Last: \`${str(f.reason)}\`: ${escapeMrkdwn(str(f.message))}`,
    action: "Check the broker's status and the sidecar's log. The sidecar keeps retrying with backoff; the token stays in use until it expires.",
  },
  sink_unrepairable: {
    title: 'Token file missing and not repaired',
    what: (f, a, now) =>
      `\`${escapeMrkdwn(str(f.path))}\` (sink \`${a.sink}\`) has not held the token for ${formatDuration(now - Number(f.since))}: \`${str(f.reason)}\` ${escapeMrkdwn(str(f.message === null ? '' : f.message))}. Programs reading it may issue tokens of their own.`,
    action: 'Check the directory: permissions, free space, a read-only mount, or a symlink or directory put at the path.',
  },
  token_expiring: {
    title: 'Token expiring with no renewal',
    what: (f, a, now) =>
      Number(f.expired) === 1
        ? `The token expired at ${kst(a.expiresAt)}. API calls now fail with EGW00123.`
        : `The token expires at ${kst(a.expiresAt)} (${formatDuration(Number(a.expiresAt) - now)} left) and no renewal has succeeded${f.reason ? ` (last failure: \`${str(f.reason)}\`)` : ''}.`,
    action: 'Find why renewals fail (see the renewal alerts and the log); `broker-token-sidecar renew --force` after the cause is fixed.',
  },
  token_invalidated: {
    title: 'Token refused by the broker',
    what: (f) =>
      `The broker refused a token the sidecar held valid (\`${str(f.brokerCode)}\`: ${escapeMrkdwn(str(f.message))}), usually after its maintenance. A new token is being issued within the rate limits.`,
    action: 'Usually nothing: watch for the resolution. If it persists, the broker may be handing back the same dead token for six hours.',
  },
  rate_limited: {
    title: 'Token issuance rate-limited (EGW00133)',
    what: (f) => `The broker refused ${str(f.failures)} token request(s) as too frequent: ${escapeMrkdwn(str(f.message))}`,
    action:
      "Another program is probably issuing tokens with the same app key (a kis_auth.py that ran before today's file existed?). Point it at the sidecar's files.",
  },
  credentials_rejected: {
    title: 'Credentials rejected by the broker',
    what: (f) => `The broker rejected the app key or secret: ${escapeMrkdwn(str(f.message))}. No request is sent with them again until they change.`,
    action: 'Check the app key and secret (a trailing newline? the real/mock pair?), update the secret, then restart the sidecar or run `renew --force`.',
  },
  store_unavailable: {
    title: 'Shared state store unreachable',
    what: (f, _a, now) =>
      `This replica has not reached Redis for ${formatDuration(now - Number(f.since))} (${escapeMrkdwn(str(f.message))}). It keeps serving its last good token from its own state and issues nothing, so as not to race the replicas that can still see the shared state.`,
    action:
      'Check Redis (is it up, reachable from this pod, its password and TLS settings). Tokens keep working until they expire; a renewal resumes once Redis is back.',
  },
  file_mode_not_private: {
    title: 'Token file not private',
    what: (f) =>
      `\`${escapeMrkdwn(str(f.path))}\` has mode ${str(f.mode)} instead of ${str(f.expectedMode)} and could not be fixed: ${escapeMrkdwn(str(f.message))}`,
    action: 'Check who owns the file and why its mode cannot be set; another process may be rewriting it.',
  },
  realtime_session_down: {
    title: 'Real-time session down',
    what: (f, _a, now) =>
      `The account's WebSocket session at the broker has not been open for ${formatDuration(now - Number(f.since))} (\`${str(f.state)}\`; last end: \`${str(f.reason)}\`), with ${str(f.registrations)} registration(s) waiting: every real-time client of the sidecar is without data. The sidecar keeps reconnecting within the broker's pacing.`,
    action:
      "See the last end reason: `key_in_use` or `replaced` means another program uses the app key's one session (point it at the sidecar); `approval_refused`, `login_failed` or `no_credential` the credentials; `connect_failed` or `stalled` the network or the broker.",
  },
  realtime_registrations_full: {
    title: 'Real-time registrations full',
    what: (f, _a, now) =>
      `All ${str(f.limit)} registrations of the account's WebSocket session have been in use for ${formatDuration(now - Number(f.since))}: a client's next new registration is refused (KIS OPSP0008) without reaching the broker.`,
    action: "Look at which clients hold what (the sidecar's log and metrics); unregister what nobody reads, or move some subscriptions to another app key.",
  },
};

const KO: Record<AlertKind, Texts> = {
  no_usable_token: {
    title: '사용 가능한 토큰 없음',
    what: (f, _a, now) =>
      `이 계정에 ${formatDuration(now - Number(f.since))} 동안 사용 가능한 토큰이 없습니다 (\`${str(f.status)}\`). 사이드카 옆의 모든 프로그램이 토큰 없이 API 호출에 실패합니다.${f.reason ? ` 마지막 실패: \`${str(f.reason)}\`: ${escapeMrkdwn(str(f.message))}.` : ''}${f.nextAttemptAt ? ` 다음 시도 ${kst(Number(f.nextAttemptAt))}.` : ''}`,
    action:
      '증권사 API 상태, 인증 정보, 사이드카 로그(`broker-token-sidecar status`)를 확인하세요. 사이드카는 증권사 제한 안에서 계속 시도합니다. 같은 앱키로 토큰을 직접 발급하지 마세요.',
  },
  renewal_failing: {
    title: '토큰 갱신 연속 실패',
    what: (f) => `토큰 발급 요청이 ${str(f.failures)}회 연속 실패했습니다. 마지막 원인: \`${str(f.reason)}\`: ${escapeMrkdwn(str(f.message))}`,
    action: '증권사 API 상태와 사이드카 로그를 확인하세요. 사이드카는 간격을 두고 계속 재시도하며, 토큰은 만료 전까지 그대로 사용됩니다.',
  },
  sink_unrepairable: {
    title: '토큰 파일 누락, 복구 실패',
    what: (f, a, now) =>
      `\`${escapeMrkdwn(str(f.path))}\` (sink \`${a.sink}\`) 파일이 ${formatDuration(now - Number(f.since))} 동안 토큰을 담고 있지 않습니다: \`${str(f.reason)}\` ${escapeMrkdwn(str(f.message === null ? '' : f.message))}. 이 파일을 읽는 프로그램이 토큰을 직접 발급할 수 있습니다.`,
    action: '디렉터리 권한, 디스크 여유 공간, 읽기 전용 마운트, 경로에 심볼릭 링크나 디렉터리가 생기지 않았는지 확인하세요.',
  },
  token_expiring: {
    title: '갱신 없이 토큰 만료 임박',
    what: (f, a, now) =>
      Number(f.expired) === 1
        ? `토큰이 ${kst(a.expiresAt)}에 만료되었습니다. API 호출이 EGW00123으로 실패합니다.`
        : `토큰이 ${kst(a.expiresAt)}에 만료되며 (${formatDuration(Number(a.expiresAt) - now)} 남음) 갱신에 성공하지 못했습니다${f.reason ? ` (마지막 실패: \`${str(f.reason)}\`)` : ''}.`,
    action: '갱신 실패 원인을 확인하세요 (갱신 알림과 로그). 원인을 해결한 뒤 `broker-token-sidecar renew --force`.',
  },
  token_invalidated: {
    title: '증권사가 토큰을 거부함',
    what: (f) =>
      `사이드카가 유효하다고 본 토큰을 증권사가 거부했습니다 (\`${str(f.brokerCode)}\`: ${escapeMrkdwn(str(f.message))}). 보통 증권사 점검 후에 발생합니다. 발급 규칙 안에서 새 토큰을 받고 있습니다.`,
    action: '대개 조치가 필요 없습니다. 해결 알림을 기다리세요. 계속되면 증권사가 6시간 동안 같은(무효) 토큰을 돌려주는 경우일 수 있습니다.',
  },
  rate_limited: {
    title: '토큰 발급 빈도 제한 (EGW00133)',
    what: (f) => `증권사가 토큰 요청 ${str(f.failures)}건을 너무 잦다며 거부했습니다: ${escapeMrkdwn(str(f.message))}`,
    action: '같은 앱키로 토큰을 발급하는 다른 프로그램이 있는지 확인하세요 (오늘 파일이 생기기 전에 실행된 kis_auth.py?). 사이드카의 파일을 읽게 하세요.',
  },
  credentials_rejected: {
    title: '인증 정보 거부됨',
    what: (f) => `증권사가 앱키 또는 앱시크릿을 거부했습니다: ${escapeMrkdwn(str(f.message))}. 값이 바뀌기 전까지 요청을 보내지 않습니다.`,
    action: '앱키와 시크릿을 확인하세요 (끝의 줄바꿈? 실전/모의 짝?). 시크릿을 고친 뒤 사이드카를 재시작하거나 `renew --force`를 실행하세요.',
  },
  store_unavailable: {
    title: '공유 상태 저장소(Redis) 연결 끊김',
    what: (f, _a, now) =>
      `이 레플리카가 ${formatDuration(now - Number(f.since))} 동안 Redis에 연결하지 못했습니다 (${escapeMrkdwn(str(f.message))}). 자기 상태에 남은 마지막 토큰을 계속 쓰며, 공유 상태를 보는 다른 레플리카와 충돌하지 않도록 새 토큰은 발급하지 않습니다.`,
    action:
      'Redis가 살아 있는지, 이 파드에서 접근 가능한지, 비밀번호와 TLS 설정을 확인하세요. 토큰은 만료 전까지 계속 쓰이며, Redis가 돌아오면 갱신이 재개됩니다.',
  },
  file_mode_not_private: {
    title: '토큰 파일 권한 노출',
    what: (f) =>
      `\`${escapeMrkdwn(str(f.path))}\` 파일 권한이 ${str(f.expectedMode)}이 아니라 ${str(f.mode)}이며 고칠 수 없습니다: ${escapeMrkdwn(str(f.message))}`,
    action: '파일 소유자와 권한을 바꿀 수 없는 이유를 확인하세요. 다른 프로세스가 파일을 다시 쓰고 있을 수 있습니다.',
  },
  realtime_session_down: {
    title: '실시간 세션 끊김',
    what: (f, _a, now) =>
      `이 계정의 증권사 웹소켓 세션이 ${formatDuration(now - Number(f.since))} 동안 열려 있지 않습니다 (\`${str(f.state)}\`, 마지막 종료 원인: \`${str(f.reason)}\`). 등록 ${str(f.registrations)}건이 기다리고 있으며, 사이드카의 실시간 클라이언트 모두가 데이터를 받지 못합니다. 사이드카는 증권사 간격 규칙 안에서 계속 다시 연결합니다.`,
    action:
      '마지막 종료 원인을 보세요: `key_in_use`나 `replaced`는 다른 프로그램이 앱키의 하나뿐인 세션을 쓰고 있다는 뜻입니다 (그 프로그램을 사이드카로 연결하세요). `approval_refused`, `login_failed`, `no_credential`은 인증 정보, `connect_failed`나 `stalled`는 네트워크나 증권사 문제입니다.',
  },
  realtime_registrations_full: {
    title: '실시간 등록 한도 소진',
    what: (f, _a, now) =>
      `이 계정 웹소켓 세션의 등록 ${str(f.limit)}건이 ${formatDuration(now - Number(f.since))} 동안 모두 사용 중입니다. 클라이언트의 새 등록은 증권사에 보내지 않고 거부됩니다 (KIS OPSP0008).`,
    action: '어떤 클라이언트가 무엇을 등록했는지 (사이드카 로그와 메트릭) 확인하고, 아무도 읽지 않는 등록을 해제하거나 일부를 다른 앱키로 옮기세요.',
  },
};

const WORDS = {
  en: {
    firing: '',
    reminder: 'Still: ',
    resolved: 'Resolved: ',
    severity: 'Severity',
    account: 'Account',
    providerEnv: 'Provider / env',
    since: 'Since',
    expiry: 'Token expires',
    reason: 'Last reason',
    todo: 'What to do',
    runbook: 'Runbook',
    dashboard: 'Dashboard',
    resolvedWhat: (since: string) => `The condition has cleared (it began ${since}).`,
  },
  ko: {
    firing: '',
    reminder: '지속 중: ',
    resolved: '해결됨: ',
    severity: '심각도',
    account: '계정',
    providerEnv: '증권사 / 환경',
    since: '시작',
    expiry: '토큰 만료',
    reason: '마지막 원인',
    todo: '조치',
    runbook: '런북',
    dashboard: '대시보드',
    resolvedWhat: (since: string) => `상황이 해소되었습니다 (시작: ${since}).`,
  },
};

const host = (ctx: MessageContext) => `sidecar on ${ctx.host}`;

const ICON: Record<Severity | 'resolved', string> = {
  critical: ':red_circle:',
  warning: ':warning:',
  info: ':information_source:',
  resolved: ':white_check_mark:',
};

export function renderAlert(alert: ActiveAlert, phase: Phase, since: number, ctx: MessageContext): SlackMessage {
  const texts = (ctx.language === 'ko' ? KO : EN)[alert.kind];
  const w = WORDS[ctx.language];
  const title = `${w[phase]}${texts.title}`;
  const where = alert.account ? `${alert.account.name} (${alert.account.provider}, ${alert.account.env})` : host(ctx);
  const runbook = runbookLink(ctx.runbookUrl, ALERT_KINDS[alert.kind].rule);
  const what = phase === 'resolved' ? w.resolvedWhat(kst(since)) : texts.what(alert.facts, alert, ctx.now);
  const links = [`<${runbook}|${w.runbook}>`, ...(ctx.dashboardUrl ? [`<${ctx.dashboardUrl}|${w.dashboard}>`] : [])].join(' · ');
  const fields = [
    [w.severity, phase === 'resolved' ? 'resolved' : alert.severity],
    [w.account, alert.account?.name ?? '-'],
    [w.providerEnv, alert.account ? `${alert.account.provider} / ${alert.account.env}` : '-'],
    [w.since, kst(since)],
    [w.expiry, kst(alert.expiresAt)],
    [w.reason, str(alert.facts.reason ?? alert.facts.brokerCode)],
  ].map(([label, value]) => ({ type: 'mrkdwn', text: `*${label}*\n${escapeMrkdwn(String(value))}` }));
  const blocks: unknown[] = [
    {
      type: 'header',
      text: { type: 'plain_text', text: `${phase === 'resolved' ? '✅' : alert.severity === 'critical' ? '🔴' : '⚠️'} ${title}`.slice(0, 150), emoji: true },
    },
    { type: 'section', text: { type: 'mrkdwn', text: what } },
    { type: 'section', fields },
  ];
  if (phase !== 'resolved') blocks.push({ type: 'section', text: { type: 'mrkdwn', text: `*${w.todo}*: ${texts.action}\n${links}` } });
  blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: `broker-token-sidecar ${ctx.version} · ${escapeMrkdwn(ctx.host)} · ${alert.kind}` }] });
  const icon = phase === 'resolved' ? ICON.resolved : ICON[alert.severity];
  return {
    text: `${icon} [${phase === 'resolved' ? 'RESOLVED' : alert.severity.toUpperCase()}] ${title}: ${where}. ${what.replace(/[`*]/g, '')} ${phase === 'resolved' ? '' : `${w.runbook}: ${runbook}`}`.trim(),
    blocks,
  };
}

const NOTICES = {
  en: { renewed: 'Token renewed', started: 'Sidecar started', stopped: 'Sidecar stopped', validUntil: 'new token valid until', accounts: 'accounts' },
  ko: { renewed: '토큰 갱신됨', started: '사이드카 시작됨', stopped: '사이드카 중지됨', validUntil: '새 토큰 유효기간', accounts: '계정' },
};

/** The optional notices: a renewal (the first system wanted these), start and stop. */
export function renderNotice(
  notice: { kind: 'renewed'; account: AccountRef; expiresAt: number } | { kind: 'started' | 'stopped'; accounts: string[] },
  ctx: MessageContext,
): SlackMessage {
  const t = NOTICES[ctx.language];
  const line =
    notice.kind === 'renewed'
      ? `${t.renewed}: ${notice.account.name} (${notice.account.provider}, ${notice.account.env}), ${t.validUntil} ${kst(notice.expiresAt)}`
      : `${t[notice.kind]} on ${ctx.host}: ${notice.accounts.length} ${t.accounts} (${notice.accounts.join(', ')})`;
  return {
    text: `${ICON.info} ${line}`,
    blocks: [
      { type: 'section', text: { type: 'mrkdwn', text: `${ICON.info} ${escapeMrkdwn(line)}` } },
      { type: 'context', elements: [{ type: 'mrkdwn', text: `broker-token-sidecar ${ctx.version} · ${escapeMrkdwn(ctx.host)}` }] },
    ],
  };
}
