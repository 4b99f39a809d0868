// Lint: TypeScript rules that catch real bugs (floating promises, `any`, non-null
// assertions), import cycles inside a package, deep imports across packages, and imports of
// packages the importing package does not declare.
// Cycles between packages cannot happen: TypeScript project references refuse them,
// and scripts/check-layers.mjs enforces the layering of DESIGN.md.
import tseslint from 'typescript-eslint';
import importX from 'eslint-plugin-import-x';

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', 'packages/console/**', 'bench/.data/**', '**/*.js', '**/*.mjs'] },
  {
    files: ['packages/*/src/**/*.ts', 'packages/*/test/**/*.ts', 'e2e/**/*.ts', 'bench/**/*.ts'],
    extends: [tseslint.configs.recommendedTypeChecked],
    plugins: { 'import-x': importX },
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    settings: { 'import-x/resolver': { node: { extensions: ['.ts', '.js'] } } },
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          allowForKnownSafeCalls: [
            {
              from: 'package',
              package: 'node:test',
              name: ['describe', 'it', 'test', 'suite', 'before', 'after', 'beforeEach', 'afterEach'],
            },
          ],
        },
      ],
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-non-null-assertion': 'error',
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/require-await': 'off',
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
      // Every import names a package the importing package's own package.json declares
      // (tests may use devDependencies); scripts/check-layers.mjs checks the layering.
      'import-x/no-extraneous-dependencies': [
        'error',
        { devDependencies: ['packages/*/test/**', 'e2e/**', 'bench/**'], includeTypes: true },
      ],
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['@insitu/*/src/*', '@insitu/*/dist/*', '@insitu/*/test/*'],
              message: 'Import a package by its name only; deep imports bypass its public entry.',
            },
            {
              group: ['../../*/src/*', '../../../packages/*'],
              message: 'Do not reach into another package by path; import it by name.',
            },
          ],
        },
      ],
      'no-console': 'error',
    },
  },
  {
    files: ['packages/*/test/**/*.ts', 'e2e/**/*.ts', 'bench/**/*.ts'],
    rules: {
      'no-console': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
    },
  },
);
