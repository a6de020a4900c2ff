import type { Socket } from 'node:net';
import type { ClientState, Reply } from './commands';
import { type ProtocolLimits, ProtocolError, RequestParser, type Request } from './protocol';
import { error } from './reply';

/** What a connection needs from its server. */
export interface Dispatcher {
  dispatch(client: ClientState, request: Request): Reply;
  errorReply(err: unknown): string;
  closed(connection: Connection): void;
}

/** Replies a client has not read yet beyond which the server stops reading its requests. */
const MAX_PENDING_REPLIES = 16 * 1024;
/** Bytes of unread replies beyond which the server stops reading its requests. */
const MAX_UNSENT_BYTES = 16 * 1024 * 1024;

/** Connections with replies to write at the end of this event-loop turn. */
let toFlush: Connection[] = [];
let flushScheduled = false;

function flushAll(): void {
  flushScheduled = false;
  const list = toFlush;
  toFlush = [];
  for (let i = 0; i < list.length; i++) list[i].flush();
}

/** How long a connection being closed keeps reading (and dropping) what the client still sends. */
const LINGER_MS = 1000;

/**
 * One client. Requests are dispatched in the order they arrive; a read answers at once, a write
 * once it is durable. Invariant: replies leave in request order. A reply that is ready waits
 * behind earlier ones still pending, in a queue of slots; replies that are ready together
 * leave in one write.
 */
export class Connection implements ClientState {
  name: string | null = null;
  closeAfterReply = false;
  private readonly parser: RequestParser;
  /** Slots of replies not yet sent, from `head`; undefined while its write is not durable. */
  private slots: (string | Buffer | undefined)[] = [];
  private head = 0;
  /** Replies ready to go out in the next write. */
  private out = '';
  private flushQueued = false;
  private paused = false;
  private ended = false;
  /** The most bytes of this client's requests held unparsed at once (INFO `appendonly_max_input_buffer`). */
  maxInputBuffer = 0;
  /** Bytes read after the connection was condemned, and dropped unread (INFO `appendonly_input_bytes_dropped`). */
  inputBytesDropped = 0;

  constructor(
    readonly id: number,
    private readonly socket: Socket,
    private readonly server: Dispatcher,
    limits: ProtocolLimits,
    authenticated: boolean,
  ) {
    this.parser = new RequestParser(limits, authenticated);
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      if (this.ended || this.closeAfterReply) {
        this.inputBytesDropped += chunk.length;
        return;
      }
      this.parser.push(chunk);
      if (this.parser.buffered > this.maxInputBuffer) this.maxInputBuffer = this.parser.buffered;
      this.process();
    });
    socket.on('drain', () => this.maybeResume());
    socket.on('error', () => {});
    socket.on('close', () => {
      this.ended = true;
      this.server.closed(this);
    });
  }

  get authenticated(): boolean {
    return this.parser.authenticated;
  }

  set authenticated(value: boolean) {
    this.parser.authenticated = value;
  }

  /** Closes the connection at once (server shutdown). */
  destroy(): void {
    this.ended = true;
    this.socket.destroy();
  }

  private process(): void {
    try {
      while (!this.paused && !this.closeAfterReply) {
        const request = this.parser.next();
        if (request === null) break;
        this.enqueue(this.server.dispatch(this, request));
        if (
          this.slots.length - this.head >= MAX_PENDING_REPLIES ||
          this.out.length + this.socket.writableLength > MAX_UNSENT_BYTES
        ) {
          this.pause();
        }
      }
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      // As Redis: answer the error, then close; what the client sends from now on is dropped
      // unread, so the bytes it announced are never buffered.
      this.enqueue(error(`ERR ${err.message}`));
      this.closeAfterReply = true;
    }
    this.requestFlush();
  }

  private enqueue(reply: Reply): void {
    if (typeof reply === 'string') {
      if (this.head === this.slots.length) this.out += reply;
      else this.slots.push(reply);
      return;
    }
    if (Buffer.isBuffer(reply)) {
      this.slots.push(reply);
      return;
    }
    const index = this.slots.length;
    this.slots.push(undefined);
    reply.then(
      (text) => this.fill(index, text),
      (err: unknown) => this.fill(index, this.server.errorReply(err)),
    );
  }

  private fill(index: number, text: string | Buffer): void {
    this.slots[index] = text;
    if (index === this.head) this.requestFlush();
  }

  /**
   * Replies are written once per event-loop turn, after every read of the turn has been
   * handled, as Redis writes in beforeSleep: replies made ready together (by one read, by one
   * fsync) leave in one write, and a client woken by its reply finds the others there too.
   */
  private requestFlush(): void {
    if (this.flushQueued) return;
    this.flushQueued = true;
    toFlush.push(this);
    if (!flushScheduled) {
      flushScheduled = true;
      setImmediate(flushAll);
    }
  }

  /** @internal Writes the replies that are ready, in order (see `requestFlush`). */
  flush(): void {
    this.flushQueued = false;
    if (this.ended) return;
    const slots = this.slots;
    while (this.head < slots.length && slots[this.head] !== undefined) {
      const reply = slots[this.head]!;
      slots[this.head++] = undefined;
      if (typeof reply === 'string') {
        this.out += reply;
      } else {
        if (this.out !== '') this.socket.write(this.out);
        this.out = '';
        this.socket.write(reply);
      }
    }
    if (this.head === slots.length && this.head > 0) {
      this.slots = [];
      this.head = 0;
    }
    if (this.out !== '') {
      this.socket.write(this.out);
      this.out = '';
    }
    if (this.closeAfterReply && this.head === this.slots.length) {
      this.ended = true;
      this.socket.end();
      // Closing a socket with unread input sends a reset, which can destroy the error reply
      // before the client reads it. So read on and drop what comes (it is never buffered), and
      // drop the socket after a grace period whatever the client does.
      this.socket.resume();
      setTimeout(() => this.socket.destroy(), LINGER_MS).unref();
      return;
    }
    this.maybeResume();
  }

  private pause(): void {
    this.paused = true;
    this.socket.pause();
  }

  private maybeResume(): void {
    if (!this.paused || this.ended) return;
    if (
      this.slots.length - this.head >= MAX_PENDING_REPLIES / 2 ||
      this.socket.writableLength > MAX_UNSENT_BYTES / 2
    )
      return;
    this.paused = false;
    this.socket.resume();
    this.process();
  }
}
