export async function convert(..._a: unknown[]): Promise<number> { return 1; }
