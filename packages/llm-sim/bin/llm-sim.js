#!/usr/bin/env node
import { argv } from 'node:process';
import { main } from '../dist/cli.js';

await main(argv.slice(2));
