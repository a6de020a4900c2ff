import {
  Body,
  Catch,
  type ExceptionFilter,
  Controller,
  Get,
  type HttpException,
  Inject,
  Param,
  Post,
  UnprocessableEntityException,
  type ArgumentsHost,
} from '@nestjs/common';
import { BaseExceptionFilter } from '@nestjs/core';
import { CommandRejected } from 'appendonly';
import { AppendonlyService } from 'appendonly/nestjs';
import { Deposit, GetBalance, Transfer, Withdraw } from '../bank/domain';
import { AuditLog } from './audit-log';

/** The body of a deposit or a withdrawal. */
interface Amount {
  readonly amount: number;
}

/** The bank over HTTP: every route executes one command or one query through the service. */
@Controller()
export class BankController {
  // @Inject by class: a parameter's type alone is erased when its import is type-only.
  constructor(
    @Inject(AppendonlyService) private readonly bank: AppendonlyService,
    @Inject(AuditLog) private readonly audit: AuditLog,
  ) {}

  @Post('accounts/:account/deposit')
  async deposit(@Param('account') account: string, @Body() body: Amount) {
    const { firstSeq } = await this.bank.execute(new Deposit(account, body.amount));
    return { seq: firstSeq, balance: await this.balanceOf(account) };
  }

  @Post('accounts/:account/withdraw')
  async withdraw(@Param('account') account: string, @Body() body: Amount) {
    const { firstSeq } = await this.bank.execute(new Withdraw(account, body.amount));
    return { seq: firstSeq, balance: await this.balanceOf(account) };
  }

  @Post('transfers')
  async transfer(@Body() body: { from: string; to: string; amount: number }) {
    const { firstSeq, lastSeq } = await this.bank.execute(new Transfer(body.from, body.to, body.amount));
    return { seqs: [firstSeq, lastSeq] };
  }

  @Get('accounts/:account')
  async balance(@Param('account') account: string) {
    return { account, balance: await this.balanceOf(account) };
  }

  /** The audit trail, once the consumer has handled every movement logged before the call. */
  @Get('audit')
  async trail() {
    await this.bank.app.consumer('audit')?.caughtUp();
    return this.audit.lines();
  }

  private balanceOf(account: string): Promise<number> {
    return this.bank.query<number>(new GetBalance(account));
  }
}

/** A refused command is the client's mistake: 422 with the handler's reason; nothing was logged. */
@Catch(CommandRejected)
export class CommandRejectedFilter extends BaseExceptionFilter implements ExceptionFilter {
  override catch(err: CommandRejected, host: ArgumentsHost): void {
    const reply: HttpException = new UnprocessableEntityException(err.message);
    super.catch(reply, host);
  }
}
