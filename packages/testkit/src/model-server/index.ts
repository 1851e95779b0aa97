export {
  block,
  type ErrorTurn,
  type ModelScript,
  type ReplyTurn,
  type ScriptedBlock,
  type ScriptedTurn,
  type ScriptedUsage,
  type TurnOptions,
  turn,
} from './script.js';
export {
  type RecordedRequest,
  type ScriptedModelServer,
  type ScriptedModelServerOptions,
  startScriptedModelServer,
} from './scripted-model-server.js';
