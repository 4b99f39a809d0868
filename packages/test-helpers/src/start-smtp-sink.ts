import { SMTPServer } from 'smtp-server';

/** One mail received by {@link startSmtpSink}. */
export interface ReceivedMail {
  from: string;
  to: string[];
  /** Header names in lower case, folded lines joined. */
  headers: Record<string, string>;
  subject: string;
  /** The body, quoted-printable and base64 decoded. */
  text: string;
  raw: string;
}

/** A real SMTP server on a free loopback port that keeps what it receives. */
export interface SmtpSink {
  readonly host: string;
  readonly port: number;
  readonly mails: readonly ReceivedMail[];
  /** Answer the next `count` messages with `code message` (e.g. 451 for a transient failure). */
  failNext(count: number, code?: number, message?: string): void;
  stop(): Promise<void>;
}

function decodeQuotedPrintable(text: string): string {
  const bytes = text
    .replace(/=\r?\n/g, '')
    .replace(/=([0-9A-F]{2})/gi, (_match, hex: string) => String.fromCharCode(parseInt(hex, 16)));
  return Buffer.from(bytes, 'latin1').toString('utf8');
}

function decodeWord(value: string): string {
  return value.replace(/=\?utf-8\?([BQ])\?([^?]*)\?=/gi, (_match, encoding: string, data: string) =>
    encoding.toUpperCase() === 'B'
      ? Buffer.from(data, 'base64').toString('utf8')
      : decodeQuotedPrintable(data.replace(/_/g, ' ')),
  );
}

function parseMail(raw: string, from: string, to: string[]): ReceivedMail {
  const split = raw.search(/\r?\n\r?\n/);
  const head = split === -1 ? raw : raw.slice(0, split);
  const body = split === -1 ? '' : raw.slice(split).replace(/^\r?\n\r?\n/, '');
  const headers: Record<string, string> = {};
  for (const headerLine of head.replace(/\r?\n[ \t]+/g, ' ').split(/\r?\n/)) {
    const colon = headerLine.indexOf(':');
    if (colon > 0)
      headers[headerLine.slice(0, colon).trim().toLowerCase()] = decodeWord(headerLine.slice(colon + 1).trim());
  }
  const encoding = (headers['content-transfer-encoding'] ?? '').toLowerCase();
  const text =
    encoding === 'quoted-printable'
      ? decodeQuotedPrintable(body)
      : encoding === 'base64'
        ? Buffer.from(body, 'base64').toString('utf8')
        : body;
  return { from, to, headers, subject: headers['subject'] ?? '', text, raw };
}

/**
 * Start a local SMTP server (the `smtp-server` package, no TLS, any login accepted) that
 * keeps every mail it accepts, for testing code that sends mail with a real SMTP client.
 *
 * @example
 * const smtp = await startSmtpSink();
 * // configure the code under test with host smtp.host, port smtp.port
 * await waitFor(() => smtp.mails.find((m) => m.subject.includes('FIRING')));
 */
/** `host`: the address to listen on (default loopback; the test bed uses its bridge address). */
export async function startSmtpSink(options: { host?: string } = {}): Promise<SmtpSink> {
  const host = options.host ?? '127.0.0.1';
  const mails: ReceivedMail[] = [];
  let failures: { count: number; code: number; message: string } = { count: 0, code: 451, message: 'try again later' };
  const server = new SMTPServer({
    secure: false,
    disabledCommands: ['STARTTLS'],
    authOptional: true,
    onAuth: (_auth, _session, callback) => callback(null, { user: 'test' }),
    onData: (stream, session, callback) => {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.once('error', (error: Error) => callback(error));
      stream.once('end', () => {
        if (failures.count > 0) {
          failures = { ...failures, count: failures.count - 1 };
          callback(Object.assign(new Error(failures.message), { responseCode: failures.code }));
          return;
        }
        const from = session.envelope.mailFrom === false ? '' : session.envelope.mailFrom.address;
        mails.push(
          parseMail(
            Buffer.concat(chunks).toString('utf8'),
            from,
            session.envelope.rcptTo.map((r) => r.address),
          ),
        );
        callback();
      });
    },
    logger: false,
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.server.address();
  if (address === null || typeof address === 'string') throw new Error('smtp sink has no TCP address');
  let stopped = false;
  return {
    host,
    port: address.port,
    mails,
    failNext(count: number, code = 451, message = 'try again later') {
      failures = { count, code, message };
    },
    stop: () => {
      if (stopped) return Promise.resolve();
      stopped = true;
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
