export { startDemoServer, type DemoServer, type DemoServerOptions } from './server.js';
export { demoAuthenticate, demoTokenFor, demoUserFromToken, DEMO_TOKEN_PREFIX } from './auth.js';
