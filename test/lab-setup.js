// Jest global setup of the `lab` project. Jest loads global setup modules natively, without the
// ts-jest transform for their imports, so this runs the TypeScript lifecycle through tsx.
import { register } from 'tsx/esm/api';

register();
const { setup } = await import('./lab-lifecycle.ts');
export default setup;
