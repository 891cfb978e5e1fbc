/**
 * The Kiwoom WebSocket's JSON (`trnm` messages): the broker's answers as third-party captures show them, and the
 * refusals, which reuse the REST API's return codes and texts (docs/brokers.md#kiwoom-real-time-session).
 */
export interface KiwoomRefusal {
  returnCode: number;
  returnMsg: string;
  /** The code inside the text ("8005", "1511"), counted in the stats. */
  code: string;
}

const refusal = (returnCode: number, code: string, returnMsg: string): KiwoomRefusal => ({ returnCode, code, returnMsg });

export const KIWOOM_REFUSALS = {
  // The REST API's answer to a bad token; the docs name 8005/8031/8103 as the LOGIN failures a client retries.
  tokenInvalid: refusal(3, '8005', '인증에 실패했습니다[8005:Token이 유효하지 않습니다]'),
  missingField: (field: string) => refusal(2, '1511', `입력 값 오류입니다[1511:필수 입력 값에 값이 존재하지 않습니다(${field})]`),
  badField: (field: string) => refusal(2, '1517', `입력 값 오류입니다[1517:입력 값 형식이 올바르지 않습니다(${field})]`),
  unsupported: (trnm: string) => refusal(2, '1504', `입력 값 오류입니다[1504:해당 URI에서는 지원하지 않는 API ID입니다(trnm=${trnm})]`),
};

/** LOGIN accepted, as measured on the mock server: `{"trnm":"LOGIN","return_code":0,"sor_yn":"Y"}`. */
export function kiwoomLoginOk(): string {
  return JSON.stringify({ trnm: 'LOGIN', return_code: 0, sor_yn: 'Y' });
}

/** REG or REMOVE accepted: `{"trnm":"REG","return_code":0,"return_msg":""}` (the guide's sample sheet, third-party). */
export function kiwoomAccepted(trnm: string): string {
  return JSON.stringify({ trnm, return_code: 0, return_msg: '' });
}

export function kiwoomRefused(trnm: string, r: KiwoomRefusal): string {
  return JSON.stringify({ trnm, return_code: r.returnCode, return_msg: r.returnMsg });
}

export const KIWOOM_PING = JSON.stringify({ trnm: 'PING' });

/** What the session a second LOGIN on its key replaced receives before it is closed (a captured test fixture). */
export const KIWOOM_REPLACED = JSON.stringify({
  trnm: 'SYSTEM',
  code: 'R10001',
  message: '동일한 App key로 접속이 되었습니다. 기존 세션은 종료가 됩니다',
});

interface KiwoomRealEntry {
  type: string;
  name: string;
  item: string;
  values: Record<string, string>;
}

/** A REAL push; captures show `data` before `trnm`. */
export function kiwoomReal(entries: KiwoomRealEntry[]): string {
  return JSON.stringify({ data: entries, trnm: 'REAL' });
}
