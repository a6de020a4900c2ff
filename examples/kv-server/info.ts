import type { AppStats } from 'appendonly';
import { REDIS_VERSION } from './commands';

/** What INFO reports, gathered by the server. */
export interface InfoInput {
  readonly port: number;
  readonly startedAt: number;
  readonly storeKind: string;
  readonly location: string;
  readonly appendfsync: string;
  readonly connectedClients: number;
  readonly maxClients: number;
  readonly totalConnections: number;
  readonly totalCommands: number;
  readonly rejectedConnections: number;
  /** The most bytes of requests one connection has held unparsed at once, since the start. */
  readonly maxInputBuffer: number;
  /** Bytes read from connections closed for a protocol error, dropped without being buffered. */
  readonly inputBytesDropped: number;
  /** The app's stats; null while the log loads. */
  readonly stats: AppStats | null;
  /** While loading: how far the store has read (its unit: bytes, records), events replayed, when it began. */
  readonly loading: {
    readonly done: number;
    readonly total: number;
    readonly unit: 'bytes' | 'records';
    readonly events: number;
    readonly startedAt: number;
  } | null;
}

const SECTIONS = ['server', 'clients', 'memory', 'persistence', 'stats', 'keyspace'] as const;
type Section = (typeof SECTIONS)[number];

/**
 * INFO as Redis writes it: `# Section` headers, `field:value` lines, CRLF line ends. The
 * persistence fields carry Redis's names, from `app.stats()` (`currentSize` → `aof_current_size`).
 */
export function renderInfo(input: InfoInput, requested: readonly string[]): string {
  const wanted = new Set<Section>();
  for (const name of requested.length === 0 ? ['default'] : requested.map((r) => r.toLowerCase())) {
    if (name === 'default' || name === 'all' || name === 'everything')
      for (const s of SECTIONS) wanted.add(s);
    else if ((SECTIONS as readonly string[]).includes(name)) wanted.add(name as Section);
  }
  const blocks: string[] = [];
  for (const section of SECTIONS) {
    if (!wanted.has(section)) continue;
    const title = section[0].toUpperCase() + section.slice(1);
    const fields = FIELDS[section](input);
    blocks.push([`# ${title}`, ...fields.map(([k, v]) => `${k}:${v}`)].join('\r\n'));
  }
  return blocks.length === 0 ? '' : `${blocks.join('\r\n\r\n')}\r\n`;
}

type Fields = [string, string | number][];

const FIELDS: Record<Section, (i: InfoInput) => Fields> = {
  server: (i) => {
    const uptime = Math.floor((Date.now() - i.startedAt) / 1000);
    return [
      ['redis_version', REDIS_VERSION],
      ['redis_mode', 'standalone'],
      ['server_name', 'appendonly-kv-server'],
      ['os', `${process.platform} ${process.arch}`],
      ['arch_bits', 64],
      ['process_id', process.pid],
      ['tcp_port', i.port],
      ['uptime_in_seconds', uptime],
      ['uptime_in_days', Math.floor(uptime / 86400)],
      ['executable', process.argv[1] ?? ''],
      ['appendonly_store', i.storeKind],
      ['appendonly_location', i.location],
    ];
  },
  clients: (i) => [
    ['connected_clients', i.connectedClients],
    ['maxclients', i.maxClients],
    ['blocked_clients', 0],
    ['appendonly_max_input_buffer', i.maxInputBuffer],
  ],
  memory: () => {
    // The process's figures: a JavaScript heap has no exact counterpart of Redis's allocator stats.
    const m = process.memoryUsage();
    return [
      ['used_memory', m.heapUsed + m.external],
      ['used_memory_human', `${((m.heapUsed + m.external) / (1024 * 1024)).toFixed(2)}M`],
      ['used_memory_rss', m.rss],
      ['used_memory_rss_human', `${(m.rss / (1024 * 1024)).toFixed(2)}M`],
      ['maxmemory', 0],
      ['maxmemory_policy', 'noeviction'],
    ];
  },
  persistence: (i) => [...loadingFields(i), ...aofFields(i)],
  stats: (i) => [
    ['total_connections_received', i.totalConnections],
    ['total_commands_processed', i.totalCommands],
    ['rejected_connections', i.rejectedConnections],
    ['appendonly_input_bytes_dropped', i.inputBytesDropped],
    ['appendonly_commands_logged', i.stats?.commandsProcessed ?? 0],
    ['appendonly_groups_replayed', i.stats?.groupsReplayed ?? 0],
  ],
  keyspace: (i) =>
    i.stats !== null && i.stats.keys > 0 ? [['db0', `keys=${i.stats.keys},expires=0,avg_ttl=0`]] : [],
};

function loadingFields(i: InfoInput): Fields {
  const l = i.loading;
  if (l === null)
    return [
      ['loading', 0],
      ['async_loading', 0],
    ];
  const elapsed = (Date.now() - l.startedAt) / 1000;
  const fraction = l.total > 0 ? l.done / l.total : 0;
  const bytes = l.unit === 'bytes';
  const eta = fraction > 0 ? Math.max(0, Math.round((elapsed / fraction) * (1 - fraction))) : 1;
  return [
    ['loading', 1],
    ['async_loading', 0],
    ['loading_start_time', Math.floor(l.startedAt / 1000)],
    // Redis's fields count bytes; a store that reads records reports how many in its own fields.
    ['loading_total_bytes', bytes ? l.total : 0],
    ['loading_loaded_bytes', bytes ? l.done : 0],
    ...(bytes
      ? []
      : ([
          ['loading_total_records', l.total],
          ['loading_loaded_records', l.done],
        ] as Fields)),
    ['loading_loaded_perc', (fraction * 100).toFixed(2)],
    ['loading_eta_seconds', eta],
    ['loading_events', l.events],
  ];
}

function aofFields(i: InfoInput): Fields {
  const s = i.stats;
  const enabled = i.storeKind === 'memory' ? 0 : 1;
  if (s === null)
    return [
      ['aof_enabled', enabled],
      ['aof_rewrite_in_progress', 0],
    ];
  const st = s.store ?? { kind: i.storeKind };
  return [
    ['aof_enabled', enabled],
    ['aof_rewrite_in_progress', st.rewriteInProgress ? 1 : 0],
    ['aof_rewrite_scheduled', st.rewriteScheduled ? 1 : 0],
    ['aof_last_rewrite_time_sec', st.lastRewriteTimeSec ?? -1],
    ['aof_current_rewrite_time_sec', st.currentRewriteTimeSec ?? -1],
    ['aof_last_bgrewrite_status', st.lastBgrewriteStatus ?? 'ok'],
    ['aof_rewrites', st.rewrites ?? 0],
    ['aof_rewrites_consecutive_failures', st.rewritesConsecutiveFailures ?? 0],
    ['aof_last_write_status', st.lastWriteStatus ?? 'ok'],
    ['aof_current_size', st.currentSize ?? 0],
    ['aof_base_size', st.baseSize ?? 0],
    ['aof_pending_rewrite', 0],
    ['aof_buffer_length', st.bufferLength ?? 0],
    ['aof_pending_bio_fsync', st.pendingBioFsync ?? 0],
    ['aof_delayed_fsync', st.delayedFsync ?? 0],
    ['aof_appendfsync', st.appendfsync ?? 'always'],
    ['aof_last_seq', s.lastSeq],
  ];
}
