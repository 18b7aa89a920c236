import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', '.cache/', '.kgate/', 'bench/out/'] },
  js.configs.recommended,
  ...tseslint.configs.strict,
  {
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    // The engine knows bindings through its registry and thread services only: the composition
    // root (src/bindings/index.ts, src/cli/, src/index.ts) wires concrete bindings in. Type-only
    // imports count too, since they tie the engine's interfaces to a binding's.
    files: ['src/engine/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^(\\.\\./)+(.*/)?bindings(/|$)',
              message:
                'src/engine/ must not import from src/bindings/; take what is needed through the registry or a thread service.',
            },
          ],
        },
      ],
    },
  },
  {
    // The config loader validates against schema/kgate.schema.json, which scripts/schema.ts
    // assembles from the bindings' fragments; it never imports a binding itself.
    files: ['src/config/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^(\\.\\./)+(.*/)?bindings(/|$)',
              message: 'src/config/ must not import from src/bindings/.',
            },
          ],
        },
      ],
    },
  },
  {
    // Options passed the schema; a binding reads them through its typed options module.
    files: ['src/**/*.ts'],
    rules: {
      'no-restricted-syntax': [
        'error',
        {
          selector:
            "MemberExpression[computed=true]:matches([object.name='options'], [object.property.name='options'])",
          message: "Read options through the binding's typed options module, not by key.",
        },
      ],
    },
  },
  {
    files: ['**/*.js'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
  },
);
