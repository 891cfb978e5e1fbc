// ESLint for the TypeScript sources (type-aware: the rules read the types tsc already checks) and the plain
// Node scripts. `npm run lint`; part of `npm test`.
import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'examples/', 'deploy/', 'test/replicas/'] },
  { linterOptions: { reportUnusedDisableDirectives: 'error' } },
  {
    files: ['src/**/*.ts', 'test/**/*.ts', 'bench/**/*.ts'],
    extends: [js.configs.recommended, ...tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: { project: './tsconfig.json', tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // node:test runs every test()/describe() it is handed; their promises are the runner's, not ours to await.
      '@typescript-eslint/no-floating-promises': [
        'error',
        { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['test', 'describe', 'it', 'suite'] }] },
      ],
      // Loaded lazily, so a command that does not need them does not pay for them at start-up (memory, time);
      // node:v8 because cli.ts must set a V8 flag before any import allocates.
      '@typescript-eslint/no-require-imports': [
        'error',
        {
          allow: [
            '^node:v8$',
            '^node:module$',
            '^undici$',
            '^@slack/webhook$',
            '^node-cron$',
            '^pino-pretty$',
            '^\\./cli/demo$',
            '^\\./examples$',
            '^\\./simulator$',
            '^\\.\\./simulator$',
            '^\\./store/redis-store$',
            '^\\./store/redis-connection$',
            '^\\./alerts/notifier$',
            '^\\./gateway/start$',
            '^\\./realtime/start$',
          ],
        },
      ],
      // Express tells an error handler by its four parameters, so an unused `_next` must stay.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
    },
  },
  {
    files: ['test/**/*.ts'],
    rules: {
      // Tests read parsed JSON and YAML (manifests, simulator bodies, /status) as `any` and assert its shape; a
      // wrong shape fails the assertion, so typing every read would add casts, not checks.
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
  {
    files: ['scripts/**/*.js'],
    extends: [js.configs.recommended],
    languageOptions: { sourceType: 'commonjs', globals: { ...globals.node } },
  },
  // Layout is Prettier's (`npm run format`), checked in `npm test`: no ESLint rule may argue with it.
  prettier,
);
