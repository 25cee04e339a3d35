// Entry point of the installed plugin: the wrapper passes the name it was run
// as (weave-net or weave-ipam) as the first argument; run by hand, the
// script's own name decides.
import { main } from './main.js';

process.exitCode = await main(process.argv[2] ?? process.argv[1] ?? '');
