export function bootChart(_r: unknown[]): string { return "<svg/>"; }
