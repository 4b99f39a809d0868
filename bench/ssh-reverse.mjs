// The `ssh -R` peer of the tunnel benchmarks (bench/tunnel, bench/callpath): a private sshd on
// loopback with throw-away keys in `dir`, and the ssh client's arguments for a reverse forward
// of 127.0.0.1:remotePort to 127.0.0.1:appPort. Each script starts and waits for the processes
// with its own helpers; this is the part they share.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Write keys and an sshd_config for `sshdPort` into `dir`; the argv of sshd and of `ssh -R`. */
export function sshReversePlan(dir, { sshdPort, remotePort, appPort }) {
  for (const file of ['host_key', 'client_key']) {
    const r = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, file)]);
    if (r.status !== 0) throw new Error(`ssh-keygen failed: ${r.stderr}`);
  }
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(join(dir, 'client_key.pub')));
  writeFileSync(
    join(dir, 'sshd_config'),
    [
      `Port ${sshdPort}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${join(dir, 'host_key')}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      'PermitRootLogin prohibit-password',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'StrictModes no',
      'AllowTcpForwarding yes',
      'GatewayPorts no',
      'LogLevel ERROR',
    ].join('\n') + '\n',
  );
  // Debian's sshd refuses to start without its privilege separation directory.
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  return {
    sshd: ['/usr/sbin/sshd', ['-D', '-e', '-f', join(dir, 'sshd_config')]],
    ssh: [
      'ssh',
      [
        '-F',
        '/dev/null',
        '-N',
        '-i',
        join(dir, 'client_key'),
        '-p',
        String(sshdPort),
        '-o',
        'BatchMode=yes',
        '-o',
        'StrictHostKeyChecking=no',
        '-o',
        'UserKnownHostsFile=/dev/null',
        '-o',
        'IdentitiesOnly=yes',
        '-o',
        'ExitOnForwardFailure=yes',
        '-o',
        'LogLevel=ERROR',
        '-R',
        `127.0.0.1:${remotePort}:127.0.0.1:${appPort}`,
        'root@127.0.0.1',
      ],
    ],
  };
}
