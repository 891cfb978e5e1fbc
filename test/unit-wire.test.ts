import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { scanJsonFields } from '../src/core/wire';

/** What the gateway reads of a broker's answer to classify it, scanned rather than parsed: never a wrong value. */

const scan = (body: unknown, names = ['rt_cd', 'msg_cd', 'return_code', 'return_msg']) =>
  scanJsonFields(Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)), names);

test('top-level codes are read from a large answer without parsing it', () => {
  const output = Object.fromEntries(Array.from({ length: 82 }, (_, i) => [`f${i}`, String(i * 7)]));
  assert.deepEqual(scan({ output, rt_cd: '0', msg_cd: 'MCA00000', msg1: '정상처리 되었습니다.' }), { rt_cd: '0', msg_cd: 'MCA00000' });
  assert.deepEqual(scan({ return_code: 3, return_msg: '인증에 실패했습니다[8005:Token이 유효하지 않습니다]' })!.return_code, 3);
  assert.match(String(scan({ return_code: 3, return_msg: '인증에 실패했습니다[8005:Token이 유효하지 않습니다]' })!.return_msg), /\[8005:/);
});

test('a name that is not certainly a top-level key gives no answer, and the caller parses', () => {
  assert.equal(scan({ output: { rt_cd: '1' } }), undefined, 'nested only');
  assert.equal(scan({ output: { rt_cd: '1' }, rt_cd: '0' }), undefined, 'nested and top level');
  assert.equal(scan({ rt_cd: { code: '0' } }), undefined, 'not a string or a number');
  assert.deepEqual(scan({ note: 'he said "rt_cd": "9"', rt_cd: '0' }), { rt_cd: '0' }, 'inside a string, escaped: not the key');
  assert.equal(scan({ a: 'rt_cd', rt_cd: '0' }), undefined, 'the name as a value too');
  assert.deepEqual(scan({ other: 1 }), {}, 'absent: nothing');
});

test('whenever it answers, it answers what JSON.parse would', () => {
  const value = fc.oneof(
    fc.string(),
    fc.integer(),
    fc.constantFrom('rt_cd', 'msg_cd', '"rt_cd"', '\\'),
    fc.dictionary(fc.constantFrom('rt_cd', 'x'), fc.string()),
  );
  fc.assert(
    fc.property(fc.dictionary(fc.constantFrom('rt_cd', 'msg_cd', 'msg1', 'output', 'x'), value), (object) => {
      const text = JSON.stringify(object);
      const scanned = scan(text, ['rt_cd', 'msg_cd']);
      if (scanned === undefined) return;
      const parsed = JSON.parse(text) as Record<string, unknown>;
      for (const name of ['rt_cd', 'msg_cd']) {
        const real = parsed[name];
        if (typeof real === 'string' || typeof real === 'number') {
          // Escapes are kept as sent: compare with the value as it was written.
          assert.equal(scanned[name], typeof real === 'string' ? JSON.stringify(real).slice(1, -1) : real);
        } else assert.equal(scanned[name], undefined, `${name} in ${text}`);
      }
    }),
    { numRuns: 2_000 },
  );
});
