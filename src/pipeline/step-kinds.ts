// Telling the kinds of step apart: code steps (run, batched or not) and the three waits.
import type { ChildrenStep, CodeStep, SignalStep, SleepStep, StepDefinition, WaitStep } from './types.js';

export function isSleepStep(step: StepDefinition): step is SleepStep {
  return (step as SleepStep).sleep !== undefined;
}

export function isSignalStep(step: StepDefinition): step is SignalStep {
  return (step as SignalStep).waitFor !== undefined;
}

export function isChildrenStep(step: StepDefinition): step is ChildrenStep {
  return (step as ChildrenStep).children !== undefined;
}

export function isWaitStep(step: StepDefinition): step is WaitStep {
  return isSleepStep(step) || isSignalStep(step) || isChildrenStep(step);
}

export function isCodeStep(step: StepDefinition): step is CodeStep {
  return !isWaitStep(step);
}
