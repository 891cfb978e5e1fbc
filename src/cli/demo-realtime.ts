/**
 * The demo's look at the real-time endpoint: two WebSocket clients with one gateway client's credentials, as two
 * bots on one app key would be, each asking the gateway for its approval key and subscribing to the same stock
 * through the endpoint. At a broker the second would be refused (OPSP8996); here both receive the same frames
 * while the broker sees one session. What happened is printed; the clients then close.
 */
import { request } from 'undici';
import WebSocket from 'ws';

interface DemoClient {
  appKey: string;
  appSecret: string;
}

/** How long the look may take before it gives up (the simulator sends two frames a second). */
const PATIENCE_MS = 15_000;

export async function demonstrateRealtime(
  gatewayUrl: string,
  realtimeUrl: string,
  account: string,
  client: DemoClient,
  sessionsAtBroker: () => number,
): Promise<string[]> {
  const answer = await request(`${gatewayUrl}/${account}/oauth2/Approval`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ grant_type: 'client_credentials', appkey: client.appKey, secretkey: client.appSecret }),
  });
  const { approval_key: approvalKey } = (await answer.body.json()) as { approval_key?: string };
  if (answer.statusCode !== 200 || !approvalKey) return [`real-time: no approval key from the gateway (HTTP ${answer.statusCode}); try again in a moment`];
  const url = `${realtimeUrl}/${account}/tryitout`;
  const register = JSON.stringify({
    header: { approval_key: approvalKey, custtype: 'P', tr_type: '1', 'content-type': 'utf-8' },
    body: { input: { tr_id: 'H0STCNT0', tr_key: '005930' } },
  });
  const frames = await Promise.all([0, 1].map(() => firstFrames(url, register, 3)));
  const same = frames[0]!.filter((f) => frames[1]!.includes(f)).length;
  return [
    `real-time: two clients on one app key subscribed to H0STCNT0 005930 through ${url}`,
    `           each received ${frames.map((f) => f.length).join(' and ')} frames (${same} byte for byte the same); the broker saw ${sessionsAtBroker()} session`,
  ];
}

/** Connects, registers, and returns the first `count` data frames (fewer if the patience runs out). */
function firstFrames(url: string, register: string, count: number): Promise<string[]> {
  return new Promise((resolve) => {
    const frames: string[] = [];
    const ws = new WebSocket(url, { perMessageDeflate: false });
    const done = () => {
      clearTimeout(timer);
      ws.close();
      resolve(frames);
    };
    const timer = setTimeout(done, PATIENCE_MS);
    ws.on('open', () => ws.send(register));
    ws.on('message', (data: Buffer) => {
      const text = data.toString('utf8');
      if (text.startsWith('0|')) frames.push(text);
      if (frames.length >= count) done();
    });
    ws.on('error', done);
  });
}
