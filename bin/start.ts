/** `npm start`: the whole pipeline in one process, on the embedded defaults unless configured. */
process.argv[2] ??= 'all';
await import('./daemon.js');
