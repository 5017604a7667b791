// walflow's public API, for pipeline files (`import { definePipeline } from 'walflow'`) and
// applications that embed the engine.
export { definePipeline, step, batchStep, type DefinePipeline, type Pipeline, type SourcePipelineDefinition } from './pipeline/define.js';
export type {
  BatchItem, BatchOptions, BatchStep, ChangeEvent, ChangeOp, InputSchema, Json, PipelineDefinition, PipelineHookContext,
  RetryPolicy, SingleStep, SourceDefinition, SourceRunInput, SourceRunInputFor, StepContext, StepDefinition, StepErrorHints, TxClient,
  Duration, StepCondition, SleepStep, SignalStep, SignalResult, ChildrenStep, ChildRun, ChildResult, WaitStep, WakeTime,
} from './pipeline/types.js';
export { finish, again, type FinishRun, type RunAgain } from './pipeline/step-control.js';
export { sendSignal, type SignalTarget } from './engine/signals.js';
export { NonRetryableError, RunInputError, StepTimeoutError } from './engine/retry.js';
export { Engine, type EngineOptions, type StartOptions } from './engine/engine.js';
export { createEmbeddingPipeline, type EmbeddingPipelineOptions, type EmbeddingPipeline, type SearchHit } from './steps/embedding/pipeline.js';
export { httpStep, type HttpStepOptions, type SecretHeader, type FromRun } from './steps/http/http-step.js';
export type { HttpStepOutput } from './steps/http/http-response.js';
export { HttpStepError } from './steps/http/http-errors.js';
export { vetUrl, hostAllowed, HostNotAllowedError, type HostPolicy, type HostPolicyOption } from './steps/http/host-policy.js';
export { httpHostPolicyFromConfig } from './steps/http/config-policy.js';
export type { EmbedderSpec } from './steps/embedding/embedder-spec.js';
export { loadConfig, type WalflowConfig } from './config/config.js';
