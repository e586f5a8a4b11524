import { mount } from 'svelte';
import App from './App.svelte';
import './app.css';
import { registerSW } from 'virtual:pwa-register';
import { appUpdate } from './state/app-update.svelte.ts';
import { privacy } from './state/privacy.svelte.ts';

// Watching starts before the app mounts, so the Privacy page counts every request since load.
privacy.start();

const target = document.getElementById('app');
if (!target) throw new Error('index.html has no #app element');
export default mount(App, { target });

// The service worker of the build (a no-op in `vite dev`): offline use, and the update prompt.
appUpdate.start(registerSW);
