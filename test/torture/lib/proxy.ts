// A TCP proxy on loopback between a Redis client and a server that can lose
// one reply on cue: it forwards a chosen request, lets the server execute
// it, then swallows the reply and drops both connections, as a network
// failure between send and reply would. It parses RESP in both directions so
// it drops exactly the reply to the chosen request, even when the client
// pipelines several requests in one round trip.

import net from 'node:net';

/** Length of the first complete RESP2 value in `buf` from `at`, or -1 when it is not complete yet. */
export function respLength(buf: Buffer, at = 0): number {
  const lineEnd = buf.indexOf('\r\n', at);
  if (lineEnd < 0) return -1;
  const type = String.fromCharCode(buf[at]!);
  const header = buf.toString('latin1', at + 1, lineEnd);
  const afterHeader = lineEnd + 2;
  switch (type) {
    case '+':
    case '-':
    case ':':
      return afterHeader - at;
    case '$': {
      const size = Number(header);
      if (size < 0) return afterHeader - at;
      return buf.length >= afterHeader + size + 2 ? afterHeader + size + 2 - at : -1;
    }
    case '*': {
      const count = Number(header);
      let end = afterHeader;
      for (let i = 0; i < count; i++) {
        const length = respLength(buf, end);
        if (length < 0) return -1;
        end += length;
      }
      return end - at;
    }
    default:
      throw new Error(`not RESP2: ${JSON.stringify(buf.toString('latin1', at, at + 40))}`);
  }
}

/** The bulk strings of a request (an array of bulk strings, as clients send commands). */
export function requestArgs(raw: Buffer): string[] {
  const args: string[] = [];
  let at = raw.indexOf('\r\n') + 2;
  while (at < raw.length) {
    const lineEnd = raw.indexOf('\r\n', at);
    const size = Number(raw.toString('latin1', at + 1, lineEnd));
    args.push(raw.toString('utf8', lineEnd + 2, lineEnd + 2 + size));
    at = lineEnd + 2 + size + 2;
  }
  return args;
}

/** A reply the proxy swallowed, and the request it answered. */
export interface DroppedReply {
  request: string[];
  /** The reply exactly as the server sent it. */
  reply: string;
}

interface Armed {
  matches: (args: string[]) => boolean;
  resolve: (dropped: DroppedReply) => void;
}

export class FlakyProxy {
  readonly #server: net.Server;
  readonly #sockets = new Set<net.Socket>();
  #armed: Armed | null = null;
  /** Connections accepted so far (a reconnect after a drop adds one). */
  connections = 0;
  /** Replies swallowed so far. */
  drops = 0;

  private constructor(server: net.Server) {
    this.#server = server;
  }

  /** Listens on a free loopback port and forwards every connection to `targetPort`. */
  static async start(targetPort: number): Promise<FlakyProxy> {
    const server = net.createServer();
    const proxy = new FlakyProxy(server);
    server.on('connection', (client) => proxy.#pipe(client, targetPort));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get port(): number {
    return (this.#server.address() as net.AddressInfo).port;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /**
   * Drops the reply to the next request for which `matches(args)` holds, and
   * with it both connections; resolves with what was dropped.
   */
  dropReplyTo(matches: (args: string[]) => boolean): Promise<DroppedReply> {
    if (this.#armed !== null) throw new Error('a drop is already armed');
    return new Promise((resolve) => {
      this.#armed = { matches, resolve };
    });
  }

  /** Forgets an armed drop that never happened. */
  disarm(): void {
    this.#armed = null;
  }

  #pipe(client: net.Socket, targetPort: number): void {
    this.connections += 1;
    const upstream = net.connect(targetPort, '127.0.0.1');
    this.#sockets.add(client).add(upstream);
    const closeBoth = () => {
      client.destroy();
      upstream.destroy();
      this.#sockets.delete(client);
      this.#sockets.delete(upstream);
    };
    client.on('error', closeBoth).on('close', closeBoth);
    upstream.on('error', closeBoth).on('close', closeBoth);

    // Requests forwarded on this connection, in order; the index of the one whose reply is to go.
    let requestBuf = Buffer.alloc(0);
    let requestsSent = 0;
    const doomed = new Map<number, { request: string[]; armed: Armed }>();
    client.on('data', (chunk: Buffer) => {
      requestBuf = Buffer.concat([requestBuf, chunk]);
      let length: number;
      while (requestBuf.length > 0 && (length = respLength(requestBuf)) >= 0) {
        const raw = requestBuf.subarray(0, length);
        requestBuf = requestBuf.subarray(length);
        const armed = this.#armed;
        if (armed !== null) {
          const args = requestArgs(raw);
          if (armed.matches(args)) {
            this.#armed = null;
            doomed.set(requestsSent, { request: args, armed });
          }
        }
        requestsSent += 1;
        upstream.write(raw);
      }
    });

    let replyBuf = Buffer.alloc(0);
    let repliesSeen = 0;
    upstream.on('data', (chunk: Buffer) => {
      replyBuf = Buffer.concat([replyBuf, chunk]);
      let length: number;
      while (replyBuf.length > 0 && (length = respLength(replyBuf)) >= 0) {
        const raw = replyBuf.subarray(0, length);
        replyBuf = replyBuf.subarray(length);
        const victim = doomed.get(repliesSeen);
        repliesSeen += 1;
        if (victim !== undefined) {
          this.drops += 1;
          closeBoth();
          victim.armed.resolve({ request: victim.request, reply: raw.toString('utf8') });
          return;
        }
        client.write(raw);
      }
    });
  }

  /** Drops every connection and stops listening. */
  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
