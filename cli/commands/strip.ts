export async function strip(..._a: unknown[]): Promise<number> { return 1; }
