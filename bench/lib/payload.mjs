// The steps every scenario writes: ~1 KB JSON messages and events in crabtalk's
// shapes (a message of one text block, a user_steered event), each one
// distinct (its index is in the text) so checks can tell them apart.

const WORDS =
  'the agent looked up the weather called a tool parsed the result and wrote a long answer about clouds rain wind ' +
  'temperature pressure humidity forecasts for the coming week with several caveats and a short summary at the end ';
const FILL = WORDS.repeat(Math.ceil(2000 / WORDS.length));

export const CONTENT_CHARS = 1000;

export function message(i, tag = 'm') {
  const head = `${tag}${i}: `;
  const text = head + FILL.slice(0, CONTENT_CHARS - head.length);
  return { message: { role: i % 2 ? 'assistant' : 'user', content: [{ type: 'text', text }] } };
}

/** The text of a message built by message(): what checks compare. */
export function textOf(entry) {
  return entry.message.content.map((block) => block.text).join('');
}

export function event(i, tag = 'e') {
  const head = `${tag}${i}: `;
  return { event: 'user_steered', content: head + FILL.slice(0, CONTENT_CHARS - head.length), ts: '2026-03-25T10:00:00Z' };
}

export function messages(n, tag) {
  return Array.from({ length: n }, (_, i) => message(i, tag));
}

export function events(n, tag) {
  return Array.from({ length: n }, (_, i) => event(i, tag));
}

/** The bytes a floor writes for step i: the same JSON the store would write. */
export function messageBuffers(n, tag) {
  return Array.from({ length: n }, (_, i) => Buffer.from(JSON.stringify(message(i, tag)), 'utf8'));
}

export function historyBytes(history) {
  let total = 0;
  for (const entry of history) total += JSON.stringify(entry).length;
  return total;
}
