/**
 * The house's layering, checked by `npm run check:imports` (part of `npm test`): no import cycle, and no room
 * importing from a room above it. The layers, from the bottom (CONTRIBUTING.md, "Layers"):
 */
const LAYERS = [
  ['core', 'version'],
  ['config', 'logging'],
  ['providers', 'store', 'simulator'],
  ['budget', 'sinks'],
  ['lifecycle'],
  ['alerts', 'metrics'],
  ['http'],
  ['gateway', 'realtime'],
  ['sidecar', 'wiring'],
  ['cli', 'examples'],
];

/** `src/<room>/...` or `src/<room>.ts`. */
const roomPath = (room) => `^src/${room}(/|\\.ts$)`;

const upward = LAYERS.flatMap((rooms, level) => {
  const above = LAYERS.slice(level + 1).flat();
  if (above.length === 0) return [];
  return [
    {
      name: `no-upward-from-${rooms.join('-')}`,
      comment: `${rooms.join(', ')} may import only from their own layer or below`,
      severity: 'error',
      from: { path: rooms.map(roomPath) },
      to: { path: above.map(roomPath) },
    },
  ];
});

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'an import cycle: two modules that each need the other are one module in two files, or a type that belongs lower',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'every-room-has-a-layer',
      comment: 'a new room of src/ takes its place in LAYERS (and in CONTRIBUTING.md) before it is imported',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^src/', pathNot: LAYERS.flat().map(roomPath) },
    },
    ...upward,
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    includeOnly: '^src/',
    // Type-only imports count: a type cycle is a cycle of the design, whatever the compiler erases.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
