import { modelState, workloadEvents } from '../support/crash-workload';

describe('crash workload model', () => {
  it('is a pure function of the number of commands, with each command a two-event group', () => {
    expect(workloadEvents(5)).toHaveLength(2);
    expect(modelState(3)).toEqual({
      k0: { i: 0, pad: '' },
      k1: { i: 1, pad: 'x' },
      k2: { i: 2, pad: 'xx' },
      last: 2,
    });
    expect(modelState(0)).toEqual({});
  });
});
