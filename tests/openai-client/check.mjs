// Drives a running slorag with the official `openai` npm client, the way an
// existing application would: chat completions (plain and streaming) and the
// model list.  Usage: node check.mjs BASE_URL API_KEY MODEL
// Exits non-zero with a message on the first mismatch.
import OpenAI from 'openai';

const [baseURL, apiKey, model] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 20000 });
const fail = (msg) => { console.error('FAIL: ' + msg); process.exit(1); };

const question = 'How tall is the lighthouse?';
const plain = await client.chat.completions.create({
  model, messages: [{ role: 'user', content: question }],
});
const text = plain.choices?.[0]?.message?.content ?? '';
if (!text.includes('forty-two metres')) fail('plain answer: ' + JSON.stringify(plain));
if (plain.object !== 'chat.completion') fail('object: ' + plain.object);
if (!(plain.usage?.total_tokens > 0)) fail('usage: ' + JSON.stringify(plain.usage));

const stream = await client.chat.completions.create({
  model, stream: true, stream_options: { include_usage: true },
  messages: [{ role: 'user', content: question }],
});
let streamed = '';
let usage = null;
for await (const chunk of stream) {
  streamed += chunk.choices?.[0]?.delta?.content ?? '';
  if (chunk.usage) usage = chunk.usage;
}
if (streamed !== text) fail(`streamed "${streamed}" != plain "${text}"`);
if (!usage) fail('no usage chunk in the stream');

const models = await client.models.list();
const ids = [];
for await (const m of models) ids.push(m.id);
if (!ids.includes(model.split('@')[0])) fail('models: ' + JSON.stringify(ids));

try {
  await client.chat.completions.create({ model: 'no-such-collection', messages: [{ role: 'user', content: 'x' }] });
  fail('unknown collection accepted');
} catch (e) {
  if (!(e instanceof OpenAI.NotFoundError)) fail('unknown collection: ' + e);
}
console.log('ok: openai client: plain, streaming, models, errors');
