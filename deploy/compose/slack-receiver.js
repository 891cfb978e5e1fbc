// Stands in for a Slack incoming webhook in the compose demo: prints each message it receives.
const http = require('node:http');

http
  .createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      try {
        const message = JSON.parse(body);
        // The sidecar sends `text` (with Block Kit); Alertmanager sends `attachments` with a title and text.
        const lines = message.text ? [message.text] : (message.attachments ?? []).map((a) => `${a.title}\n${a.text}`);
        console.log(`[slack ${req.url.split('/').slice(0, 3).join('/')}] ${lines.join('\n') || JSON.stringify(message)}`);
      } catch {
        console.log(`[slack] unparseable message: ${body.slice(0, 200)}`);
      }
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    });
  })
  .listen(8080, () => console.log('slack-receiver listening on :8080'));
