// `npm run lint`: typescript-eslint's recommended rules over the sources, tests, benchmarks and
// scripts (formatting is Prettier's: `npm run format`).
import js from '@eslint/js'
import globals from 'globals'
import tseslint from 'typescript-eslint'

export default tseslint.config(
  {ignores: ['dist/**', 'node_modules/**', 'build/**', 'oclif.manifest.json']},
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {globals: globals.node},
    linterOptions: {reportUnusedDisableDirectives: 'error'},
    rules: {
      // A leading underscore marks a parameter a signature requires but the body does not use.
      '@typescript-eslint/no-unused-vars': ['error', {argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none'}],
      // `catch {}` is how cleanup code says "already gone is fine".
      'no-empty': ['error', {allowEmptyCatch: true}],
      // Names, terminal output and archives are checked for control characters on purpose.
      'no-control-regex': 'off',
    },
  },
  {
    // Tests reach into private state of the class under test.
    files: ['test/**/*.ts'],
    rules: {'@typescript-eslint/no-explicit-any': 'off'},
  },
  {
    files: ['**/*.cjs'],
    languageOptions: {sourceType: 'commonjs'},
    rules: {'@typescript-eslint/no-require-imports': 'off'},
  },
)
