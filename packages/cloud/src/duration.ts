/** The one duration formatter lives in the protocol package, which the dashboard bundles too. */
export { formatDuration } from '@bematic/protocol';
