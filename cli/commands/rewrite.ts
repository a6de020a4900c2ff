export async function rewrite(..._a: unknown[]): Promise<number> { return 1; }
