/**
 * The `pg` driver, loaded with the navigator shim around it (pg-navigator-shim.ts). ES modules
 * evaluate their imports in order: the shim, then pg, then this body, which removes the shim.
 */
import { removeNavigatorShim } from './pg-navigator-shim.js';
import pg from 'pg';

removeNavigatorShim();

export default pg;
