import { Container as InversifyContainer } from 'inversify';

/**
 * inversify's `Container`, the one appendonly is built with. Pass a container made from this
 * export as `createApp({ container })`: from an ES module, `import { Container } from 'inversify'`
 * resolves to inversify's ESM build, whose class TypeScript (and `instanceof`) tell from the
 * CommonJS one appendonly uses.
 */
export const Container = InversifyContainer;
/** An instance of {@link Container}. */
export type Container = InversifyContainer;
