import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { context } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';

/** An SDK tracer whose finished spans land in memory. */
export function memoryTracing() {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  return {
    exporter,
    provider,
    tracer: provider.getTracer('agentwire-test'),
    spans: (): ReadableSpan[] => exporter.getFinishedSpans(),
    close: () => provider.shutdown(),
  };
}

/** Registers the OTel SDK's AsyncLocalStorage context manager globally (as applications do); returns the undo. */
export function useAsyncContext(): () => void {
  const manager = new AsyncLocalStorageContextManager().enable();
  if (!context.setGlobalContextManager(manager)) throw new Error('a global context manager is already registered');
  return () => context.disable();
}
