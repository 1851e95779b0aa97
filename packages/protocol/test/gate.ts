/** A promise that settles when the test says so (`open`), to hold a run where the test wants it. */
export function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { open, opened };
}
