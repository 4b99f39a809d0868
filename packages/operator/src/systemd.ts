/** Options of {@link systemdUnit}. */
export interface SystemdUnitOptions {
  /** argv of `insitu` itself, e.g. `['/usr/bin/node', '/opt/insitu/packages/cli/bin/insitu.js']`. */
  insitu: readonly string[];
  config: string;
  user?: string;
  /** Seconds systemd waits after SIGTERM (the node stops its services: their grace plus a margin). */
  stopTimeoutSec?: number;
}

function quote(arg: string): string {
  // systemd's own quoting: double quotes, with backslash and double quote escaped; `$` and `%` doubled.
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(arg) && !arg.includes('%')) return arg;
  return `"${arg.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\$/g, '$$$$').replace(/%/g, '%%')}"`;
}

/**
 * The systemd unit of `insitu node`: restarted always (systemd is the supervisor of the
 * supervisor), its whole control group stopped with it so no platform service outlives it
 * (`KillMode=control-group`, the default, stated), SIGTERM first so the node stops its
 * services in order and resigns its leadership.
 */
export function systemdUnit(options: SystemdUnitOptions): string {
  const exec = [...options.insitu, 'node', '--config', options.config].map(quote).join(' ');
  return [
    '[Unit]',
    'Description=Insitu management node (operator: platform services, repairs, alerts)',
    'Documentation=https://github.com/insitu-platform/insitu/blob/main/docs/multi-node-install.md',
    'Wants=network-online.target',
    'After=network-online.target',
    'StartLimitIntervalSec=0',
    '',
    '[Service]',
    'Type=simple',
    `ExecStart=${exec}`,
    ...(options.user ? [`User=${options.user}`] : []),
    'Restart=always',
    'RestartSec=2',
    'KillMode=control-group',
    'KillSignal=SIGTERM',
    `TimeoutStopSec=${options.stopTimeoutSec ?? 60}`,
    'LimitNOFILE=65536',
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
}
