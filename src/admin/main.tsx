// The admin console's entry point: its style (with uPlot's) and the app, rendered into the shell's #app.
import { render } from 'preact';
import 'uplot/dist/uPlot.min.css';
import './admin.css';
import { App } from './App';

const root = document.getElementById('app')!;
// The shell's "Loading…" line goes: it stays only when this script never ran.
root.replaceChildren();
render(<App />, root);
