import { useEffect, useState } from "preact/hooks";

/** The current time, renewed every `ms` while the component is shown (for relative times and running durations). */
export function useNow(ms: number): Date {
  const [now, setNow] = useState(() => new Date());
  useEffect(() => {
    const t = setInterval(() => setNow(new Date()), ms);
    return () => clearInterval(t);
  }, [ms]);
  return now;
}
