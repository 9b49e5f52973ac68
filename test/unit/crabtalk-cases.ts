// Hand-written step and meta texts with what crabtalk v0.0.22 reads each as,
// worked out from its serde types and serde_json's limits (not produced by any
// reader). Used to check the test oracle and, through it, stepstore's own
// classification. Each case says why.

export type StepKind = 'compact' | 'legacy-compact' | 'event' | 'entry';

export interface StepCase {
  name: string;
  text: string;
  kind: StepKind | null;
  why: string;
}

export interface MetaCase {
  name: string;
  text: string;
  ok: boolean;
  why: string;
}

/** A valid content-block message. */
const MSG = '{"role":"user","content":[{"type":"text","text":"hi"}]}';
const TS = '"ts":"2026-03-25T10:00:00Z"';
const AT = '"archived_at":"2026-03-25T10:00:00Z"';
const USAGE = '"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15}';
const DONE_HEAD = '"event":"done","model":"m","iterations":1,"stop_reason":"end_turn"';

/** An entry whose message carries the given blocks. */
const blocks = (...items: string[]): string => `{"message":{"role":"assistant","content":[${items.join(',')}]}}`;
/** A tool_result event with the given raw duration_ms. */
const toolResult = (duration: string): string => `{"event":"tool_result","call_id":"c1","duration_ms":${duration},${TS}}`;
/** A done event with the given raw usage object. */
const done = (usage: string): string => `{${DONE_HEAD},"usage":${usage},${TS}}`;

export const STEP_CASES: StepCase[] = [
  // --- compact marker
  { name: 'compact marker', text: `{"archive_name":"crab-tg-1-1",${AT}}`, kind: 'compact', why: 'both required strings present' },
  { name: 'compact marker with a message', text: `{"archive_name":"a",${AT},"message":${MSG}}`, kind: 'compact', why: 'first match wins; extra fields ignored' },
  { name: 'compact marker with event fields', text: `{"event":"user_steered","content":"c",${TS},"archive_name":"a",${AT}}`, kind: 'compact', why: 'compact is tried before event' },
  { name: 'compact marker without archived_at', text: '{"archive_name":"a"}', kind: null, why: 'archived_at is required; nothing else matches' },
  { name: 'compact marker without archived_at, with message', text: `{"archive_name":"a","message":${MSG}}`, kind: 'entry', why: 'compact fails, the entry matches' },
  { name: 'numeric archive_name alone', text: `{"archive_name":5,${AT}}`, kind: null, why: 'archive_name must be a string' },
  { name: 'numeric archive_name with compact', text: `{"archive_name":5,${AT},"compact":"s"}`, kind: 'legacy-compact', why: 'compact fails and falls through to the legacy marker' },
  { name: 'null archive_name with message', text: `{"archive_name":null,${AT},"message":${MSG}}`, kind: 'entry', why: 'String refuses null; falls through to the entry' },
  { name: 'compact marker with duplicate archive_name', text: `{"archive_name":"a","archive_name":"b",${AT}}`, kind: null, why: 'a known field twice fails the struct' },
  { name: 'duplicate archive_name with compact', text: `{"archive_name":"a","archive_name":"b",${AT},"compact":"s"}`, kind: 'legacy-compact', why: 'archive_name is unknown to the legacy struct, so its duplicate is ignored' },
  { name: 'compact marker with a duplicate unknown key', text: `{"archive_name":"a",${AT},"x":1,"x":2}`, kind: 'compact', why: 'duplicates of ignored fields are fine' },

  // --- legacy compact marker
  { name: 'legacy marker, all fields', text: `{"compact":"summary","title":"Old",${AT}}`, kind: 'legacy-compact', why: 'the legacy shape' },
  { name: 'legacy marker, compact only', text: '{"compact":"summary"}', kind: 'legacy-compact', why: 'title and archived_at default to ""' },
  { name: 'legacy marker, empty summary', text: '{"compact":""}', kind: 'legacy-compact', why: 'an empty string is a string' },
  { name: 'legacy marker with event fields', text: `{"compact":"s","event":"user_steered","content":"c",${TS}}`, kind: 'legacy-compact', why: 'legacy is tried before event' },
  { name: 'legacy marker, title null', text: '{"compact":"s","title":null}', kind: null, why: 'a defaulted String still refuses null' },
  { name: 'legacy marker, title null, with message', text: `{"compact":"s","title":null,"message":${MSG}}`, kind: 'entry', why: 'legacy fails, the entry matches' },
  { name: 'legacy marker, title number', text: '{"compact":"s","title":3}', kind: null, why: 'title must be a string' },
  { name: 'legacy marker, archived_at null', text: '{"compact":"s","archived_at":null}', kind: null, why: 'a defaulted String still refuses null' },
  { name: 'legacy marker, compact null', text: '{"compact":null}', kind: null, why: 'compact is a required String' },
  { name: 'legacy marker, numeric compact, with message', text: `{"compact":1,"message":${MSG}}`, kind: 'entry', why: 'legacy fails, the entry matches' },
  { name: 'legacy marker, duplicate compact', text: '{"compact":"a","compact":"b"}', kind: null, why: 'a known field twice fails the struct' },

  // --- tool_start
  {
    name: 'tool_start event',
    text: `{"event":"tool_start","calls":[{"id":"t1","name":"get","arguments":"{}"},{"id":"t2","name":"noop"}],${TS}}`,
    kind: 'event',
    why: 'arguments may be absent',
  },
  { name: 'tool_start, no calls', text: `{"event":"tool_start","calls":[],${TS}}`, kind: 'event', why: 'an empty Vec is fine' },
  { name: 'tool_start without ts', text: '{"event":"tool_start","calls":[]}', kind: null, why: 'ts is required' },
  { name: 'tool_start, arguments null', text: `{"event":"tool_start","calls":[{"id":"t1","name":"get","arguments":null}],${TS}}`, kind: null, why: 'arguments is a defaulted String: null fails' },
  { name: 'tool_start, arguments object', text: `{"event":"tool_start","calls":[{"id":"t1","name":"get","arguments":{}}],${TS}}`, kind: null, why: 'arguments must be a string' },
  { name: 'tool_start, call without name', text: `{"event":"tool_start","calls":[{"id":"t1"}],${TS}}`, kind: null, why: 'name is required' },
  { name: 'tool_start, calls is an object', text: `{"event":"tool_start","calls":{},${TS}}`, kind: null, why: 'calls must be an array' },
  { name: 'tool_start, call with duplicate id', text: `{"event":"tool_start","calls":[{"id":"a","id":"b","name":"n"}],${TS}}`, kind: null, why: 'a duplicate field fails the call struct and so the event' },

  // --- tool_result
  { name: 'tool_result event', text: toolResult('42'), kind: 'event', why: 'duration_ms is a plain integer' },
  { name: 'tool_result, duration 0', text: toolResult('0'), kind: 'event', why: '0 is a u64' },
  { name: 'tool_result, duration u64::MAX', text: toolResult('18446744073709551615'), kind: 'event', why: 'the largest u64' },
  { name: 'tool_result, duration 2^64', text: toolResult('18446744073709551616'), kind: null, why: 'beyond u64 it becomes a float' },
  { name: 'tool_result, duration 12.5', text: toolResult('12.5'), kind: null, why: 'a float is not a u64' },
  { name: 'tool_result, duration 42.0', text: toolResult('42.0'), kind: null, why: 'a fraction makes it a float even when whole' },
  { name: 'tool_result, duration 4.2e1', text: toolResult('4.2e1'), kind: null, why: 'an exponent makes it a float' },
  { name: 'tool_result, duration 42e0', text: toolResult('42e0'), kind: null, why: 'an exponent makes it a float' },
  { name: 'tool_result, duration -1', text: toolResult('-1'), kind: null, why: 'negative' },
  { name: 'tool_result, duration -0', text: toolResult('-0'), kind: null, why: 'serde_json reads -0 as the float -0.0' },
  { name: 'tool_result, duration as string', text: toolResult('"42"'), kind: null, why: 'a string is not a number' },
  { name: 'tool_result without call_id', text: `{"event":"tool_result","duration_ms":1,${TS}}`, kind: null, why: 'call_id is required' },
  { name: 'tool_result, duplicate duration_ms', text: `{"event":"tool_result","call_id":"c","duration_ms":1,"duration_ms":1,${TS}}`, kind: null, why: 'a known field twice fails the struct' },

  // --- done
  {
    name: 'done event, full usage',
    text: done('{"prompt_tokens":1200,"completion_tokens":80,"total_tokens":1280,"completion_tokens_details":{"reasoning_tokens":12},"prompt_cache_hit_tokens":1000,"prompt_cache_miss_tokens":200}'),
    kind: 'event',
    why: 'every Usage field present and in range',
  },
  { name: 'done event, minimal usage', text: `{${DONE_HEAD},${USAGE},${TS}}`, kind: 'event', why: 'the optional counters may be absent' },
  { name: 'done, iterations 2.0', text: `{"event":"done","model":"m","iterations":2.0,"stop_reason":"s",${USAGE},${TS}}`, kind: null, why: 'usize refuses a float' },
  { name: 'done, iterations u64::MAX', text: `{"event":"done","model":"m","iterations":18446744073709551615,"stop_reason":"s",${USAGE},${TS}}`, kind: 'event', why: 'usize is 64-bit' },
  { name: 'done, prompt_tokens u32::MAX', text: done('{"prompt_tokens":4294967295,"completion_tokens":0,"total_tokens":0}'), kind: 'event', why: 'the largest u32' },
  { name: 'done, prompt_tokens 2^32', text: done('{"prompt_tokens":4294967296,"completion_tokens":0,"total_tokens":0}'), kind: null, why: 'out of range for u32' },
  { name: 'done, usage without total_tokens', text: done('{"prompt_tokens":1,"completion_tokens":1}'), kind: null, why: 'total_tokens is required' },
  { name: 'done, cache hit null', text: done('{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2,"prompt_cache_hit_tokens":null}'), kind: 'event', why: 'Option<u32> takes null as absent' },
  { name: 'done, cache miss 1e3', text: done('{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2,"prompt_cache_miss_tokens":1e3}'), kind: null, why: 'an exponent makes it a float' },
  { name: 'done, details null', text: done('{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2,"completion_tokens_details":null}'), kind: 'event', why: 'the details are an Option' },
  { name: 'done, details empty', text: done('{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2,"completion_tokens_details":{}}'), kind: 'event', why: 'reasoning_tokens is an Option' },
  { name: 'done, reasoning null', text: done('{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2,"completion_tokens_details":{"reasoning_tokens":null}}'), kind: 'event', why: 'Option<u32> takes null as absent' },
  { name: 'done, reasoning -5', text: done('{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2,"completion_tokens_details":{"reasoning_tokens":-5}}'), kind: null, why: 'negative' },
  { name: 'done, reasoning 2^32', text: done('{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2,"completion_tokens_details":{"reasoning_tokens":4294967296}}'), kind: null, why: 'out of range for u32' },
  { name: 'done, details is a string', text: done('{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2,"completion_tokens_details":"x"}'), kind: null, why: 'the details must be an object' },
  { name: 'done, duplicate prompt_tokens', text: done('{"prompt_tokens":1,"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}'), kind: null, why: 'a known field twice fails Usage' },
  { name: 'done, usage null', text: done('null'), kind: null, why: 'usage is required and not an Option' },
  { name: 'done without stop_reason', text: `{"event":"done","model":"m","iterations":1,${USAGE},${TS}}`, kind: null, why: 'stop_reason is required' },
  { name: 'done with extra fields', text: `{${DONE_HEAD},${USAGE},${TS},"extra":{"deep":[1,2]}}`, kind: 'event', why: 'extra fields are ignored' },

  // --- user_steered and the tag itself
  { name: 'user_steered event', text: `{"event":"user_steered","content":"shorter please",${TS}}`, kind: 'event', why: 'the steering shape' },
  { name: 'user_steered, content null', text: `{"event":"user_steered","content":null,${TS}}`, kind: null, why: 'content is a String' },
  { name: 'user_steered without ts', text: '{"event":"user_steered","content":"c"}', kind: null, why: 'ts is required' },
  { name: 'unknown event tag', text: `{"event":"thinking",${TS}}`, kind: null, why: 'only four tags exist' },
  { name: 'event tag in another case', text: `{"event":"Done","model":"m","iterations":1,"stop_reason":"s",${USAGE},${TS}}`, kind: null, why: 'tags are case-sensitive' },
  { name: 'event fields without a tag', text: `{"call_id":"c","duration_ms":1,${TS}}`, kind: null, why: 'the tag is required' },
  { name: 'duplicate event tag', text: `{"event":"user_steered","event":"user_steered","content":"c",${TS}}`, kind: null, why: 'a duplicated tag fails the event, even with the same value' },
  { name: 'duplicate event tag, with message', text: `{"event":"user_steered","event":"user_steered","content":"c",${TS},"message":${MSG}}`, kind: 'entry', why: 'the event fails, the entry matches' },
  { name: 'event tag null, with message', text: `{"event":null,"message":${MSG}}`, kind: 'entry', why: 'a null tag is no variant; the entry matches' },
  { name: 'valid event with a valid message', text: `{"event":"user_steered","content":"c",${TS},"message":${MSG}}`, kind: 'event', why: 'event is tried before entry' },
  { name: 'valid event with an invalid message', text: `{"event":"user_steered","content":"c",${TS},"message":"hi"}`, kind: 'event', why: 'message is an ignored extra field of the event' },
  { name: 'unknown event with a valid message', text: `{"event":"bogus",${TS},"message":${MSG}}`, kind: 'entry', why: 'the event fails, the entry matches' },
  { name: 'unknown event with an invalid message', text: `{"event":"bogus",${TS},"message":{"role":"user","content":"hi"}}`, kind: null, why: 'neither event nor entry' },
  { name: 'mistyped event with a valid message', text: `{"event":"tool_result","call_id":"c","duration_ms":12.5,${TS},"message":${MSG}}`, kind: 'entry', why: 'the event fails on duration_ms, the entry matches' },

  // --- history entry and message
  { name: 'entry', text: `{"message":${MSG}}`, kind: 'entry', why: 'the plain history shape' },
  { name: 'entry with agent', text: `{"agent":"critic","message":${MSG}}`, kind: 'entry', why: 'a guest agent' },
  { name: 'entry with empty agent', text: `{"agent":"","message":${MSG}}`, kind: 'entry', why: 'an empty string is a string' },
  { name: 'entry with agent null', text: `{"agent":null,"message":${MSG}}`, kind: null, why: 'agent is a defaulted String: null fails' },
  { name: 'entry with numeric agent', text: `{"agent":7,"message":${MSG}}`, kind: null, why: 'agent must be a string' },
  { name: 'entry with duplicate agent', text: `{"agent":"a","agent":"a","message":${MSG}}`, kind: null, why: 'a known field twice fails the entry' },
  { name: 'entry with duplicate message', text: `{"message":${MSG},"message":${MSG}}`, kind: null, why: 'a known field twice fails the entry' },
  { name: 'entry with extra fields', text: `{"message":${MSG},"id":1,"meta":{"a":null}}`, kind: 'entry', why: 'extra fields are ignored' },
  { name: 'message key written with an escape', text: `{"\\u006dessage":${MSG}}`, kind: 'entry', why: 'the key decodes to "message"' },
  { name: 'message key twice, once escaped', text: `{"message":${MSG},"\\u006dessage":${MSG}}`, kind: null, why: 'both decode to "message": a duplicate' },
  { name: 'message null', text: '{"message":null}', kind: null, why: 'message must be an object' },
  { name: 'message without role', text: '{"message":{"content":[]}}', kind: null, why: 'role is required' },
  { name: 'message with custom role', text: '{"message":{"role":"narrator","content":[]}}', kind: 'entry', why: 'role is any string' },
  { name: 'message with numeric role', text: '{"message":{"role":1,"content":[]}}', kind: null, why: 'role must be a string' },
  { name: 'message with duplicate role', text: '{"message":{"role":"user","role":"user","content":[]}}', kind: null, why: 'a known field twice fails the message' },
  { name: 'message with extra fields', text: '{"message":{"role":"user","content":[],"name":"x","tool_calls":[]}}', kind: 'entry', why: 'extra fields are ignored' },
  { name: 'OpenAI-style string content', text: '{"message":{"role":"user","content":"Hi!"}}', kind: null, why: 'content must be a sequence of blocks' },
  { name: 'content null', text: '{"message":{"role":"user","content":null}}', kind: null, why: 'content must be a sequence' },
  { name: 'content missing', text: '{"message":{"role":"user"}}', kind: null, why: 'content is required' },
  { name: 'content empty', text: '{"message":{"role":"developer","content":[]}}', kind: 'entry', why: 'an empty sequence is fine' },

  // --- blocks
  { name: 'text block without text', text: blocks('{"type":"text"}'), kind: null, why: 'text is required' },
  { name: 'text block, text null', text: blocks('{"type":"text","text":null}'), kind: null, why: 'text is a String' },
  { name: 'text block, duplicate text', text: blocks('{"type":"text","text":"a","text":"b"}'), kind: null, why: 'a known field twice fails the block' },
  { name: 'block with extra keys', text: blocks('{"type":"text","text":"a","cache_control":{"type":"ephemeral"}}'), kind: 'entry', why: 'extra keys are ignored' },
  { name: 'block without type', text: blocks('{"text":"a"}'), kind: null, why: 'the tag is required' },
  { name: 'block type null', text: blocks('{"type":null,"text":"a"}'), kind: null, why: 'the tag must name a variant' },
  { name: 'unknown block type', text: blocks('{"type":"tool_call","id":"x"}'), kind: null, why: 'any other type fails the whole message' },
  { name: 'block with duplicate type', text: blocks('{"type":"text","type":"text","text":"a"}'), kind: null, why: 'a duplicated tag fails the block' },
  { name: 'unknown block after a good one', text: blocks('{"type":"text","text":"a"}', '{"type":"audio","data":""}'), kind: null, why: 'one bad block fails the message' },
  { name: 'tool_use block', text: blocks('{"type":"tool_use","id":"t1","name":"calc","input":{"a":1}}'), kind: 'entry', why: 'input is any value' },
  { name: 'tool_use without input', text: blocks('{"type":"tool_use","id":"t1","name":"calc"}'), kind: null, why: 'input is required' },
  { name: 'tool_use, input null', text: blocks('{"type":"tool_use","id":"t1","name":"calc","input":null}'), kind: 'entry', why: 'null is a JSON value' },
  { name: 'tool_use, input a string', text: blocks('{"type":"tool_use","id":"t1","name":"calc","input":"{}"}'), kind: 'entry', why: 'a string is a JSON value' },
  { name: 'tool_use, duplicate keys in input', text: blocks('{"type":"tool_use","id":"t1","name":"calc","input":{"a":1,"a":2,"b":{"c":1,"c":2}}}'), kind: 'entry', why: 'a free value keeps the last duplicate' },
  { name: 'tool_use, duplicate id', text: blocks('{"type":"tool_use","id":"t1","id":"t2","name":"calc","input":{}}'), kind: null, why: 'a known field twice fails the block' },
  { name: 'tool_use, numeric name', text: blocks('{"type":"tool_use","id":"t1","name":5,"input":{}}'), kind: null, why: 'name must be a string' },
  { name: 'tool_use, big integer in input', text: blocks('{"type":"tool_use","id":"t1","name":"n","input":{"n":123456789012345678901234567890,"m":18446744073709551616}}'), kind: 'entry', why: 'a free value takes it as a float' },
  { name: 'tool_use, -0.0 and 1e21 in input', text: blocks('{"type":"tool_use","id":"t1","name":"n","input":[-0.0,-0,1e21,1E-400]}'), kind: 'entry', why: 'any finite float is fine' },
  { name: 'tool_use, 1e400 in input', text: blocks('{"type":"tool_use","id":"t1","name":"n","input":[1e400]}'), kind: null, why: 'serde_json refuses a number beyond f64' },
  { name: 'tool_result block, string content', text: blocks('{"type":"tool_result","tool_use_id":"t1","name":"calc","content":"42"}'), kind: 'entry', why: 'the untagged content tries a string first' },
  { name: 'tool_result block, name null', text: blocks('{"type":"tool_result","tool_use_id":"t1","name":null,"content":""}'), kind: 'entry', why: 'name is an Option' },
  { name: 'tool_result block without name', text: blocks('{"type":"tool_result","tool_use_id":"t1","content":""}'), kind: 'entry', why: 'name is an Option' },
  { name: 'tool_result block, numeric name', text: blocks('{"type":"tool_result","tool_use_id":"t1","name":1,"content":""}'), kind: null, why: 'name must be a string when present' },
  { name: 'tool_result block, nested blocks', text: blocks('{"type":"tool_result","tool_use_id":"t1","content":[{"type":"text","text":"a"},{"type":"image","source":{"type":"url","url":"u"}}]}'), kind: 'entry', why: 'the content may be blocks' },
  { name: 'tool_result block, nested tool_result', text: blocks('{"type":"tool_result","tool_use_id":"t1","content":[{"type":"tool_result","tool_use_id":"t0","content":[]}]}'), kind: 'entry', why: 'blocks nest' },
  { name: 'tool_result block, bad nested block', text: blocks('{"type":"tool_result","tool_use_id":"t1","content":[{"type":"text"}]}'), kind: null, why: 'a bad nested block fails the content, the block and the message' },
  { name: 'tool_result block, content null', text: blocks('{"type":"tool_result","tool_use_id":"t1","content":null}'), kind: null, why: 'neither a string nor blocks' },
  { name: 'tool_result block, numeric content', text: blocks('{"type":"tool_result","tool_use_id":"t1","content":42}'), kind: null, why: 'neither a string nor blocks' },
  { name: 'tool_result block without content', text: blocks('{"type":"tool_result","tool_use_id":"t1"}'), kind: null, why: 'content is required' },
  { name: 'tool_result block without tool_use_id', text: blocks('{"type":"tool_result","content":""}'), kind: null, why: 'tool_use_id is required' },
  { name: 'thinking block with signature', text: blocks('{"type":"thinking","thinking":"hmm","signature":"sig=="}'), kind: 'entry', why: 'the thinking shape' },
  { name: 'thinking block, signature null', text: blocks('{"type":"thinking","thinking":"hmm","signature":null}'), kind: 'entry', why: 'signature is an Option' },
  { name: 'thinking block, numeric signature', text: blocks('{"type":"thinking","thinking":"hmm","signature":1}'), kind: null, why: 'signature must be a string when present' },
  { name: 'thinking block without thinking', text: blocks('{"type":"thinking","signature":"s"}'), kind: null, why: 'thinking is required' },
  { name: 'image block', text: blocks('{"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgo="}}'), kind: 'entry', why: 'source is any value' },
  { name: 'image block, source null', text: blocks('{"type":"image","source":null}'), kind: 'entry', why: 'null is a JSON value' },
  { name: 'image block without source', text: blocks('{"type":"image"}'), kind: null, why: 'source is required' },
  { name: 'image block, duplicate keys in source', text: blocks('{"type":"image","source":{"type":"url","type":"base64","data":""}}'), kind: 'entry', why: 'a free value keeps the last duplicate' },

  // --- depth: the entry itself uses 4 levels (object, message, content, block)
  { name: 'depth 127 inside input', text: blocks(`{"type":"tool_use","id":"t","name":"n","input":${'['.repeat(123)}${']'.repeat(123)}}`), kind: 'entry', why: '4 + 123 = 127 nested containers' },
  { name: 'depth 128 inside input', text: blocks(`{"type":"tool_use","id":"t","name":"n","input":${'['.repeat(124)}${']'.repeat(124)}}`), kind: null, why: '4 + 124 = 128 nested containers' },
  { name: 'depth 127 in an ignored field', text: `{"archive_name":"a",${AT},"x":${'{"y":'.repeat(126)}1${'}'.repeat(126)}}`, kind: 'compact', why: '1 + 126 = 127: the whole step is parsed before matching' },
  { name: 'depth 128 in an ignored field', text: `{"archive_name":"a",${AT},"x":${'{"y":'.repeat(127)}1${'}'.repeat(127)}}`, kind: null, why: '1 + 127 = 128, even in a field nobody reads' },

  // --- surrogate escapes
  { name: 'proper surrogate pair', text: blocks('{"type":"text","text":"\\ud83d\\ude00"}'), kind: 'entry', why: 'a high then a low surrogate is one character' },
  { name: 'lone high surrogate in text', text: blocks('{"type":"text","text":"a\\ud800b"}'), kind: null, why: 'a lone high surrogate is an error' },
  { name: 'lone low surrogate in text', text: blocks('{"type":"text","text":"\\udc00"}'), kind: null, why: 'a lone low surrogate is an error' },
  { name: 'reversed surrogate pair', text: blocks('{"type":"text","text":"\\ude00\\ud83d"}'), kind: null, why: 'low before high is two lone surrogates' },
  { name: 'high surrogate then a non-surrogate escape', text: blocks('{"type":"text","text":"\\ud800\\u0041"}'), kind: null, why: 'the high surrogate needs a low one' },
  { name: 'high surrogate at the end of the string', text: blocks('{"type":"text","text":"\\ud800"}'), kind: null, why: 'the high surrogate needs a low one' },
  { name: 'lone surrogate in input', text: blocks('{"type":"tool_use","id":"t","name":"n","input":{"s":"\\udfff"}}'), kind: null, why: 'every string is checked, free values included' },
  { name: 'lone surrogate in a key', text: `{"message":${MSG},"\\ud800":1}`, kind: null, why: 'keys are strings too' },
  { name: 'lone surrogate in an ignored field', text: `{"archive_name":"a",${AT},"note":"\\udc00"}`, kind: null, why: 'the whole step is parsed before matching' },
  { name: 'surrogate pair in agent', text: `{"agent":"\\uD83E\\uDD80","message":${MSG}}`, kind: 'entry', why: 'upper-case hex is fine' },

  // --- JSON text
  { name: 'empty file', text: '', kind: null, why: 'EOF while parsing a value' },
  { name: 'only whitespace', text: ' \n\t', kind: null, why: 'EOF while parsing a value' },
  { name: 'not JSON', text: 'hello', kind: null, why: 'expected value' },
  { name: 'BOM before the object', text: `\ufeff{"message":${MSG}}`, kind: null, why: 'serde_json does not skip a BOM' },
  { name: 'whitespace around the object', text: ` \r\n\t{"message":${MSG}}\n\n `, kind: 'entry', why: 'JSON whitespace is allowed on both sides' },
  { name: 'non-breaking space before the object', text: `\u00a0{"message":${MSG}}`, kind: null, why: 'only space, tab, CR and LF are whitespace' },
  { name: 'trailing garbage', text: `{"message":${MSG}}x`, kind: null, why: 'trailing characters' },
  { name: 'two objects', text: `{"message":${MSG}}{"message":${MSG}}`, kind: null, why: 'one value per file' },
  { name: 'trailing comma', text: `{"message":${MSG},}`, kind: null, why: 'serde_json refuses trailing commas' },
  { name: 'single quotes', text: "{'message':{}}", kind: null, why: 'keys must be double-quoted strings' },
  { name: 'comment', text: `/* c */{"message":${MSG}}`, kind: null, why: 'JSON has no comments' },
  { name: 'raw tab in a string', text: blocks('{"type":"text","text":"a\tb"}'), kind: null, why: 'control characters must be escaped' },
  { name: 'raw newline in a string', text: blocks('{"type":"text","text":"a\nb"}'), kind: null, why: 'control characters must be escaped' },
  { name: 'escaped control characters', text: blocks('{"type":"text","text":"\\u0000\\t\\n\\b\\f\\r\\/\\"\\\\"}'), kind: 'entry', why: 'all valid escapes' },
  { name: 'invalid escape \\x', text: blocks('{"type":"text","text":"\\x41"}'), kind: null, why: 'not a JSON escape' },
  { name: "invalid escape \\'", text: blocks('{"type":"text","text":"\\\'"}'), kind: null, why: 'not a JSON escape' },
  { name: 'short \\u escape', text: blocks('{"type":"text","text":"\\u12"}'), kind: null, why: 'four hex digits are required' },
  { name: 'DEL and U+2028 raw in a string', text: blocks('{"type":"text","text":"a\u007f\u2028b"}'), kind: 'entry', why: 'only characters below U+0020 are control characters to JSON' },
  { name: 'leading zero in input', text: blocks('{"type":"tool_use","id":"t","name":"n","input":[01]}'), kind: null, why: 'leading zeros are invalid' },
  { name: 'NaN in input', text: blocks('{"type":"tool_use","id":"t","name":"n","input":[NaN]}'), kind: null, why: 'not JSON' },
  { name: 'plus sign in input', text: blocks('{"type":"tool_use","id":"t","name":"n","input":[+1]}'), kind: null, why: 'not JSON' },
  { name: 'fraction without digits', text: blocks('{"type":"tool_use","id":"t","name":"n","input":[1.]}'), kind: null, why: 'a digit must follow the point' },
  { name: 'top-level array', text: `[{"message":${MSG}}]`, kind: null, why: 'only a top-level object is considered (stepstore documents this)' },
  { name: 'top-level string', text: '"step"', kind: null, why: 'not an object' },
  { name: 'top-level null', text: 'null', kind: null, why: 'not an object' },
  { name: 'empty object', text: '{}', kind: null, why: 'matches no shape' },
];

/** A meta with the three required fields. */
const BASE = '"agent":"crab","created_by":"tg:1","created_at":"2026-03-25T10:00:00Z"';

export const META_CASES: MetaCase[] = [
  { name: 'required fields only', text: `{${BASE}}`, ok: true, why: 'title, updated_at, message_count default' },
  { name: 'as crabtalk writes it', text: `{${BASE},"title":"","updated_at":"2026-03-25T10:00:00Z","message_count":0}`, ok: true, why: 'the usual meta' },
  { name: 'with summary', text: `{${BASE},"summary":"s"}`, ok: true, why: 'summary is an Option' },
  { name: 'summary null', text: `{${BASE},"summary":null}`, ok: true, why: 'Option takes null as absent' },
  { name: 'summary number', text: `{${BASE},"summary":1}`, ok: false, why: 'summary must be a string when present' },
  { name: 'old fields topic and uptime_secs', text: `{${BASE},"topic":"weather","uptime_secs":3600}`, ok: true, why: 'unknown fields are ignored' },
  { name: 'duplicate agent', text: `{${BASE},"agent":"crab"}`, ok: false, why: 'a known field twice fails' },
  { name: 'duplicate summary, both null', text: `{${BASE},"summary":null,"summary":null}`, ok: false, why: 'the duplicate check does not look at values' },
  { name: 'duplicate unknown field', text: `{${BASE},"topic":"a","topic":"b"}`, ok: true, why: 'ignored fields are not checked' },
  { name: 'missing created_at', text: '{"agent":"crab","created_by":"tg:1"}', ok: false, why: 'created_at is required' },
  { name: 'missing agent', text: '{"created_by":"tg:1","created_at":"t"}', ok: false, why: 'agent is required' },
  { name: 'agent null', text: '{"agent":null,"created_by":"tg:1","created_at":"t"}', ok: false, why: 'agent is a String' },
  { name: 'numeric agent', text: '{"agent":1,"created_by":"tg:1","created_at":"t"}', ok: false, why: 'agent is a String' },
  { name: 'empty created_by', text: '{"agent":"crab","created_by":"","created_at":"t"}', ok: true, why: 'an empty string is a string' },
  { name: 'title null', text: `{${BASE},"title":null}`, ok: false, why: 'a defaulted String still refuses null' },
  { name: 'updated_at null', text: `{${BASE},"updated_at":null}`, ok: false, why: 'a defaulted String still refuses null' },
  { name: 'message_count 2^32', text: `{${BASE},"message_count":4294967296}`, ok: true, why: 'a u64' },
  { name: 'message_count u64::MAX', text: `{${BASE},"message_count":18446744073709551615}`, ok: true, why: 'the largest u64' },
  { name: 'message_count 2^64', text: `{${BASE},"message_count":18446744073709551616}`, ok: false, why: 'beyond u64' },
  { name: 'message_count 1.0', text: `{${BASE},"message_count":1.0}`, ok: false, why: 'a float is not a u64' },
  { name: 'message_count 1e2', text: `{${BASE},"message_count":1e2}`, ok: false, why: 'an exponent makes it a float' },
  { name: 'message_count -1', text: `{${BASE},"message_count":-1}`, ok: false, why: 'negative' },
  { name: 'message_count -0', text: `{${BASE},"message_count":-0}`, ok: false, why: 'serde_json reads -0 as a float' },
  { name: 'message_count null', text: `{${BASE},"message_count":null}`, ok: false, why: 'a defaulted u64 still refuses null' },
  { name: 'message_count as string', text: `{${BASE},"message_count":"3"}`, ok: false, why: 'a string is not a number' },
  { name: 'lone surrogate in title', text: `{${BASE},"title":"\\ud800"}`, ok: false, why: 'a known string is checked' },
  { name: 'lone surrogate in summary', text: `{${BASE},"summary":"\\udc00"}`, ok: false, why: 'a known string is checked' },
  { name: 'surrogate pair in title', text: `{${BASE},"title":"\\ud83e\\udd80"}`, ok: true, why: 'a proper pair' },
  { name: 'lone surrogate in a key', text: `{${BASE},"\\ud800":1}`, ok: false, why: 'every key of the meta object is decoded as a string' },
  { name: 'lone surrogate in an unknown field', text: `{${BASE},"topic":"\\ud800"}`, ok: true, why: 'serde_json skips an unknown value without decoding its escapes' },
  { name: 'deep nesting in an unknown field', text: `{${BASE},"topic":${'['.repeat(200)}${']'.repeat(200)}}`, ok: true, why: 'skipping an unknown value has no depth limit' },
  { name: '1e400 in an unknown field', text: `{${BASE},"topic":1e400}`, ok: true, why: 'skipping checks number syntax only' },
  { name: 'raw control character in an unknown field', text: `{${BASE},"topic":"a\u0001b"}`, ok: false, why: 'skipping still refuses control characters' },
  { name: 'invalid escape in an unknown field', text: `{${BASE},"topic":"\\q"}`, ok: false, why: 'skipping still checks escapes' },
  { name: 'bad syntax in an unknown field', text: `{${BASE},"topic":[1,]}`, ok: false, why: 'skipping still checks syntax' },
  { name: 'BOM', text: `\ufeff{${BASE}}`, ok: false, why: 'serde_json does not skip a BOM' },
  { name: 'whitespace around', text: `\n {${BASE}} \n`, ok: true, why: 'JSON whitespace is fine' },
  { name: 'trailing garbage', text: `{${BASE}},`, ok: false, why: 'trailing characters' },
  { name: 'empty text', text: '', ok: false, why: 'EOF' },
  { name: 'top-level null', text: 'null', ok: false, why: 'not a struct' },
  { name: 'top-level string', text: '"crab"', ok: false, why: 'not a struct' },
  { name: 'empty object', text: '{}', ok: false, why: 'agent is required' },
];
