import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { systemClock } from '../src/core/clock';
import { generateCredential } from '../src/simulator';
import { startSimulator, tempDir } from './helpers';
import { replicaTools, runReplica, writeCredentialFiles, writeKisDevlp } from './replicas';

/**
 * The clients' own REST calls against the broker simulator, as they send them (test/replicas): python-kis's quote,
 * which sends no custtype and reads the answer field by name, and the official samples' price, order and balance
 * calls on kis_auth.py. A simulator stricter than the broker, or one that leaves out a field the real answer has,
 * fails here as it failed these clients.
 */

const tools = replicaTools();

describe("the real clients' REST calls, against the simulator", () => {
  test('python-kis: quote(kis, "005930", "KRX") reads every field it reads at the real broker, with no custtype header', async (t) => {
    if (!tools) return t.skip('python3 with PyYAML, or faketime, not installed');
    const credential = generateCredential('kis', 'clients-pykis');
    const { simulator, url } = await startSimulator(t, [credential], { clock: systemClock as never });
    const home = tempDir(t);
    const files = writeCredentialFiles(join(home, 'creds'), credential, 'kis');
    const run = await runReplica(
      'pykis_bot.py',
      ['--id', 'trader01', '--appkey-file', files.appKeyFile, '--secret-file', files.secretFile, '--quote', '005930'],
      {
        tools,
        home,
        timeZone: 'UTC',
        env: { PYKIS_REPLICA_REAL_DOMAIN: url },
      },
    );
    assert.equal(run.status, 0, run.stderr);
    const quote = (run.report as unknown as { quote: Record<string, unknown> }).quote;
    assert.deepEqual(quote, {
      symbol: '005930',
      price: '71000',
      change: '500',
      volume: 12345678,
      amount: '876543210000',
      marketCap: '4238546',
      sign: 'rise',
      risk: 'none',
      halt: false,
      eps: '5251',
      per: '13.52',
      week52HighDate: '2025-07-10',
      message: '정상처리 되었습니다.',
    });
    const stats = simulator.stats();
    assert.deepEqual([stats.tokenRequests, stats.proofs, stats.proofsOk, stats.badRequests], [1, 1, 1, 0]);
  });

  test("kis_auth.py's official samples: price, a cash order and the balance, as the samples call them", async (t) => {
    if (!tools) return t.skip('python3 with PyYAML, or faketime, not installed');
    const credential = generateCredential('kis', 'clients-samples');
    const { simulator, url } = await startSimulator(t, [credential], { clock: systemClock as never });
    const home = tempDir(t);
    writeKisDevlp(home, credential, url);
    const run = await runReplica('kis_samples.py', [], { tools, home, timeZone: 'Asia/Seoul' });
    assert.equal(run.status, 0, `${run.stdout}\n${run.stderr}`);
    assert.deepEqual(JSON.parse(run.stdout.trim()), {
      price: { ok: true, fields: 82, stck_prpr: '71000', acml_tr_pbmn: '876543210000' },
      order: { ok: true, fields: ['KRX_FWDG_ORD_ORGNO', 'ODNO', 'ORD_TMD'] },
      balance: { ok: true, pages: 1, output1Fields: 26, output2Fields: 24 },
      tokenRequests: 1,
    });
    const stats = simulator.stats();
    assert.deepEqual([stats.proofsOk, stats.ordersOk, stats.inquiriesOk, stats.badRequests], [1, 1, 1, 0]);
  });
});
