/** The headless Chromium the browser tests drive through playwright-core (Debian's `chromium` package). */
export const CHROMIUM = '/usr/bin/chromium';

/** Headless, no sandbox (containers), and nothing that talks to the network on its own. */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-quic',
  '--no-first-run',
  '--disable-component-update',
  '--disable-sync',
];
