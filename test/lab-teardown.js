// Jest global teardown of the `lab` project (see lab-setup.js for why it goes through tsx).
import { register } from 'tsx/esm/api';

register();
const { teardown } = await import('./lab-lifecycle.ts');
export default teardown;
