import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import prettier from 'eslint-config-prettier';

export default tseslint.config(
  { ignores: ['node_modules/', '.lab/', 'coverage/', 'dist/'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: {
          allowDefaultProject: [
            '*.js',
            'bin/*.js',
            'test/*.js',
            'test/*.cjs',
            'lab/tools/*.mjs',
            'api/board/static/*.js',
          ],
        },
      },
    },
    rules: {
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
    },
  },
  {
    // Workflow code runs in Temporal's deterministic sandbox: no Node built-ins, no I/O.
    files: ['workflows/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['node:*', 'fs', 'http', 'https', 'net', 'child_process', 'ioredis', '@kubernetes/*'],
              message: 'workflows must stay deterministic: do I/O in activities',
            },
          ],
        },
      ],
    },
  },
  {
    // Plain JavaScript glue (bin, jest hooks): Node globals, no type information.
    files: ['**/*.js', '**/*.cjs', '**/*.mjs'],
    // disableTypeChecked's parserOptions kept: parsed without the project service, so these files
    // need no allowDefaultProject entry (which allows only eight files).
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      ...tseslint.configs.disableTypeChecked.languageOptions,
      globals: { process: 'readonly', module: 'writable', require: 'readonly' },
    },
  },
  {
    // The board's script runs in the browser, as a module.
    files: ['api/board/static/*.js'],
    languageOptions: {
      sourceType: 'module',
      globals: {
        document: 'readonly',
        window: 'readonly',
        fetch: 'readonly',
        EventSource: 'readonly',
        Node: 'readonly',
        CSS: 'readonly',
        setInterval: 'readonly',
      },
    },
  },
  prettier,
);
