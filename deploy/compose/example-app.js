// An application beside the sidecar: it only reads the token files, as kis_auth.py and the JSON clients do.
// Every 30 s it prints whether today's kis_auth.py file and the JSON cache hold a token that is still valid.
const fs = require('node:fs');
const path = require('node:path');

const [kisDir, jsonPath] = process.argv.slice(2);
const kstDate = () => new Date(Date.now() + 9 * 3600e3).toISOString().slice(0, 10).replace(/-/g, '');

function check() {
  const daily = path.join(kisDir, `KIS${kstDate()}`);
  try {
    const text = fs.readFileSync(daily, 'utf8');
    const validDate = /^valid-date: (.+)$/m.exec(text)?.[1];
    const left = Date.parse(`${validDate.replace(' ', 'T')}+09:00`) - Date.now();
    console.log(`${daily}: token valid for ${(left / 3600e3).toFixed(1)} h more`);
  } catch (error) {
    console.log(`${daily}: not readable yet (${error.code ?? error.message})`);
  }
  try {
    const json = JSON.parse(fs.readFileSync(jsonPath, 'utf8'));
    console.log(`${jsonPath}: token ${json.access_token.slice(0, 6)}..., expires ${json.expiry_datetime} KST`);
  } catch (error) {
    console.log(`${jsonPath}: not readable yet (${error.code ?? error.message})`);
  }
}

check();
setInterval(check, 30_000);
